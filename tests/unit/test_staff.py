"""Staff roles, principals and tokens, and the directory's rules (on its in-memory double)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

import engine.staff
from engine.errors import Conflict, InvalidMessage, NotFound
from engine.staff import (
    TOKEN_PREFIX,
    Role,
    StaffEntry,
    StaffPrincipal,
    UnknownRole,
    new_staff_token,
    token_digest,
)
from tests.fakes import FixedClock, InMemoryStaffDirectory

EVERY_ROLE = frozenset(Role)


# -- roles ------------------------------------------------------------------------------------


def test_role_values_are_written_as_the_specification_writes_them() -> None:
    assert [role.value for role in Role] == [
        "Direct Enrollment User", "Member Account Manager", "enrollment request agent",
        "enrollment exception agent", "administrator", "account status client"]


@pytest.mark.parametrize(("text", "role"), [
    ("Direct Enrollment User", Role.DIRECT_ENROLLMENT_USER),
    ("direct enrollment user", Role.DIRECT_ENROLLMENT_USER),
    ("  MEMBER   account Manager ", Role.MEMBER_ACCOUNT_MANAGER),
    ("Enrollment-Request-Agent", Role.ENROLLMENT_REQUEST_AGENT),
    ("enrollment_exception_agent", Role.ENROLLMENT_EXCEPTION_AGENT),
    ("ADMINISTRATOR", Role.ADMINISTRATOR),
    ("Account Status Client", Role.ACCOUNT_STATUS_CLIENT),
])
def test_role_names_match_in_any_case(text: str, role: Role) -> None:
    assert Role.parse(text) is role


@pytest.mark.parametrize("text", ["admin", "", "Direct Enrollment", "member account managers"])
def test_an_unknown_role_is_refused_naming_every_valid_one(text: str) -> None:
    with pytest.raises(UnknownRole) as caught:
        Role.parse(text)
    assert isinstance(caught.value, InvalidMessage)
    assert caught.value.reason.startswith(f"unknown role {text!r}; valid roles: ")
    assert all(f'"{role.value}"' in caught.value.reason for role in Role)


def test_has_any_needs_one_of_the_roles() -> None:
    manager = StaffPrincipal("s1", "maria", frozenset({Role.MEMBER_ACCOUNT_MANAGER}))
    assert manager.has_any(Role.MEMBER_ACCOUNT_MANAGER)
    assert manager.has_any(Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER)
    assert not manager.has_any(Role.DIRECT_ENROLLMENT_USER)
    assert not manager.has_any(Role.ADMINISTRATOR)
    assert not manager.has_any()
    assert manager.actor == "staff:maria"


@pytest.mark.parametrize("role", list(Role))
def test_an_administrator_passes_every_role_check(role: Role) -> None:
    admin = StaffPrincipal("s2", "root", frozenset({Role.ADMINISTRATOR}))
    assert admin.has_any(role)
    others = StaffPrincipal("s3", "clerk", EVERY_ROLE - {Role.ADMINISTRATOR, role})
    assert not others.has_any(role)


# -- tokens -----------------------------------------------------------------------------------


def test_a_token_is_prefixed_and_carries_256_random_bits() -> None:
    tokens = {new_staff_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for token in list(tokens)[:50]:
        assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43
        body = token.removeprefix(TOKEN_PREFIX)
        assert len(base64.urlsafe_b64decode(body + "=")) == 32
    # Every URL-safe character turns up in every position: the bits are not patterned.
    bodies = [token.removeprefix(TOKEN_PREFIX) for token in tokens]
    assert all(len({body[i] for body in bodies}) >= 60 for i in range(42))


def test_the_digest_is_sha256_of_a_well_formed_token_only() -> None:
    token = new_staff_token()
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    for malformed in ("", "pbs_", token[4:], token + "x", token[:-1], "pbs_" + "!" * 43,
                      "Pbs_" + token[4:], token + "\n"):
        assert token_digest(malformed) is None


# -- the directory ----------------------------------------------------------------------------


def test_add_authenticate_and_list_keep_only_the_digest() -> None:
    directory = InMemoryStaffDirectory()
    principal, token = directory.add("maria", frozenset({Role.MEMBER_ACCOUNT_MANAGER}))
    assert principal == StaffPrincipal(principal.id, "maria", frozenset({Role.MEMBER_ACCOUNT_MANAGER}))
    assert directory.authenticate(token) == principal
    # The double holds what a store holds: the digest, never the token.
    assert directory.digests == {hashlib.sha256(token.encode()).hexdigest(): principal.id}
    assert token not in repr(directory.entries) and token not in repr(directory.list())
    [entry] = directory.list()
    assert (entry.name, entry.revoked_at) == ("maria", None)
    assert set(vars(entry)) == {"id", "name", "roles", "created_at", "revoked_at"}


@pytest.mark.parametrize("presented", ["", "Bearer x", "pbs_short", "not-a-token" * 5])
def test_unknown_or_malformed_tokens_authenticate_nobody(presented: str) -> None:
    directory = InMemoryStaffDirectory()
    directory.add("maria", frozenset({Role.ADMINISTRATOR}))
    assert directory.authenticate(presented) is None
    assert directory.authenticate(new_staff_token()) is None


def test_a_revoked_token_stops_working_at_once() -> None:
    clock = FixedClock()
    directory = InMemoryStaffDirectory(clock)
    principal, token = directory.add("maria", frozenset({Role.DIRECT_ENROLLMENT_USER}))
    _other, other_token = directory.add("omar", frozenset({Role.DIRECT_ENROLLMENT_USER}))
    clock.advance(minutes=5)
    revoked = directory.revoke("maria")
    assert revoked.revoked_at == clock.current and revoked.id == principal.id
    assert directory.authenticate(token) is None
    assert directory.authenticate(other_token) is not None
    with pytest.raises(Conflict, match="revoked already"):
        directory.revoke(principal.id)  # by id too; and the first revocation time stays
    assert directory.list()[0].revoked_at == revoked.revoked_at


def test_names_are_unique_for_good_and_checked() -> None:
    directory = InMemoryStaffDirectory()
    directory.add("maria", frozenset({Role.ADMINISTRATOR}))
    directory.revoke("maria")
    with pytest.raises(Conflict, match="never reused"):
        directory.add("maria", frozenset({Role.ADMINISTRATOR}))
    for bad in ("", " maria", "maria ", "a\tb", "x" * 101, "new\nline"):
        with pytest.raises(InvalidMessage, match="staff name"):
            directory.add(bad, frozenset({Role.ADMINISTRATOR}))
    with pytest.raises(InvalidMessage, match="at least one role"):
        directory.add("nobody", frozenset())
    with pytest.raises(NotFound):
        directory.revoke("ghost")


def test_a_name_may_not_spell_another_members_id() -> None:
    directory = InMemoryStaffDirectory()
    first, _ = directory.add("maria", frozenset({Role.ADMINISTRATOR}))
    with pytest.raises(Conflict, match="or with that id"):
        directory.add(first.id, frozenset({Role.ADMINISTRATOR}))


def test_the_stored_digest_is_compared_again_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store whose lookup is looser than equality still lets no wrong token in, and the
    comparison is ``hmac.compare_digest`` (a spy that calls through to it)."""

    class LooseDirectory(InMemoryStaffDirectory):
        def _find_by_digest(self, digest: str) -> tuple[StaffEntry, str] | None:
            # Like a case-insensitive collation: any digest matches the first member's.
            stored, staff_id = next(iter(self.digests.items()))
            return self.entries[staff_id], stored

    calls: list[tuple[str, str]] = []
    real: Callable[[str, str], bool] = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(engine.staff, "compare_digest", spy)
    directory = LooseDirectory()
    _principal, token = directory.add("maria", frozenset({Role.ADMINISTRATOR}))
    assert directory.authenticate(token) is not None
    assert directory.authenticate(new_staff_token()) is None
    assert len(calls) == 2 and calls[0][0] == calls[0][1] and calls[1][0] != calls[1][1]
