"""Sign-in commands through the bus with fakes: failures and locks, two-factor codes sent as
notifications, expired passwords, resets that unlock, profile changes, credential events."""

from __future__ import annotations

from typing import Any

import pytest

from engine.commands import MessageOrigin
from engine.errors import PolicyRefused
from engine.member_commands import (
    Actor,
    CompletePasswordReset,
    PreferenceInput,
    SignIn,
    SignInResult,
    SweepCredentials,
    UnlockMember,
    UpdateProfile,
    VerifyOtp,
)
from membership.model import Communication
from mpi.model import Address
from tests.unit.membership.member_bus import MemberBus

HASH = "pbkdf2_sha256$1$c2FsdA==$aGFzaA=="
CREDENTIAL_EVENTS = "events: {publish: [member.password_changed, member.locked, member.unlocked]}\n"


def origin(kind: str, n: list[int] = [0]) -> MessageOrigin:  # noqa: B006 - a counter
    n[0] += 1
    return MessageOrigin(channel="http", sender="portal", control_id=f"{kind}-{n[0]}",
                         message_type=kind, facility="")


def active(bus: MemberBus) -> str:
    bus.patient()
    bus.enroll({"identifier": "NGH|100"})
    outcome = bus.activate(bus.tokens()[-1])
    return str(outcome.member.member_id)


def sign_in(bus: MemberBus, member_id: str, ok: bool, **extra: Any) -> SignInResult:
    result = bus.run(SignIn(origin=origin("SignIn"), member_id=member_id, verified=ok,
                            checked_against=HASH, **extra)).member
    assert isinstance(result, SignInResult)
    return result


def test_three_failures_lock_then_valid_credentials_hear_locked_and_wrong_ones_generic() -> None:
    bus = MemberBus(CREDENTIAL_EVENTS)
    member_id = active(bus)
    assert [sign_in(bus, member_id, False).result for _ in range(3)] == ["refused"] * 3
    locked = sign_in(bus, member_id, True)
    assert locked.result == "locked" and locked.locked_until is not None
    assert sign_in(bus, member_id, False).result == "refused"  # never "locked" for a wrong one
    [event] = bus.events("member.locked")
    assert event["mechanism"] == "time-based" and event["locked_until"] is not None
    bus.advance(minutes=5)
    assert sign_in(bus, member_id, True).result == "signed_in"
    [unlocked] = bus.events("member.unlocked")
    assert unlocked["reason"] == "the lock period ended" and unlocked["actor"]["type"] == "system"
    refusals = [a for a in bus.uow.audit.committed if a.action == "member.sign_in"]
    assert len(refusals) == 5 and all(a.outcome == "refused" for a in refusals)
    assert refusals[3].reason == "locked; the password was correct"


def test_failures_of_one_account_never_lock_another() -> None:
    bus = MemberBus()
    first = active(bus)
    bus.patient("200", email="bob@example.org")
    bus.enroll({"identifier": "NGH|200"})
    second = str(bus.activate(bus.tokens()[-1], username="bob").member.member_id)
    for _ in range(20):
        sign_in(bus, first, False)
    assert sign_in(bus, second, True).result == "signed_in"
    assert sign_in(bus, first, True).result == "locked"


def test_credential_events_are_off_by_default() -> None:
    bus = MemberBus()
    member_id = active(bus)
    for _ in range(3):
        sign_in(bus, member_id, False)
    assert bus.events("member.locked") == [] and "member.locked" not in bus.rules.events.publish


def test_a_password_reset_clears_an_indefinite_lock() -> None:
    bus = MemberBus(CREDENTIAL_EVENTS + "membership:\n  lockout:\n    time_based: null\n"
                    "    successive: {failures: 2, lock: indefinite}\n")
    member_id = active(bus)
    sign_in(bus, member_id, False)
    sign_in(bus, member_id, False)
    bus.advance(days=400)
    assert sign_in(bus, member_id, True).result == "locked"
    bus.run(_reset_request(member_id))
    token = [n.context["reset_token"] for n in bus.uow.notifications.committed
             if n.kind == "password_reset"][-1]
    bus.run(CompletePasswordReset(origin=origin("Reset"), token=token, password_hash="new$hash",
                                  history_checked_against=(), reused=False))
    assert [e["reason"] for e in bus.events("member.unlocked")] == ["password reset"]
    assert len(bus.events("member.password_changed")) == 1
    member = bus.uow.members.get(member_id)
    assert member is not None and not member.lockout.has_lock and member.password_hash == "new$hash"


def _reset_request(member_id: str) -> Any:
    from engine.member_commands import RequestPasswordReset

    return RequestPasswordReset(origin=origin("RequestReset"), member_id=member_id,
                                reason="asked", actor=Actor(type="member", id=member_id))


def test_two_factor_sends_a_code_and_a_new_code_replaces_the_old() -> None:
    bus = MemberBus("membership: {two_factor: {enabled: true}}\n")
    member_id = active(bus)
    first = sign_in(bus, member_id, True)
    assert first.result == "challenge" and first.challenge
    codes = [n for n in bus.uow.notifications.committed if n.kind == "otp_code"]
    assert codes[-1].channel == "email" and "code" in codes[-1].secrets
    old_code = codes[-1].context["code"]
    second = sign_in(bus, member_id, True)
    new_code = [n for n in bus.uow.notifications.committed if n.kind == "otp_code"][-1].context["code"]
    verify = lambda ch, code: bus.run(VerifyOtp(origin=origin("Otp"), challenge=ch,  # noqa: E731
                                                code=code)).member.result
    assert verify(first.challenge, old_code) == "refused"  # the old challenge is gone
    assert verify(second.challenge, new_code) == "signed_in"
    assert verify(second.challenge, new_code) == "refused"  # single use


def test_a_code_expires_at_six_minutes_and_wrong_codes_spend_the_challenge() -> None:
    bus = MemberBus("membership: {two_factor: {enabled: true, max_attempts: 2}}\n")
    member_id = active(bus)
    challenge = sign_in(bus, member_id, True).challenge
    code = [n for n in bus.uow.notifications.committed if n.kind == "otp_code"][-1].context["code"]
    bus.advance(minutes=6)
    assert bus.run(VerifyOtp(origin=origin("Otp"), challenge=challenge, code=code)).member.result \
        == "refused"
    challenge = sign_in(bus, member_id, True).challenge
    code = [n for n in bus.uow.notifications.committed if n.kind == "otp_code"][-1].context["code"]
    wrong = str((int(code) + 1) % 10 ** 6).zfill(6)
    for _ in range(2):
        assert bus.run(VerifyOtp(origin=origin("Otp"), challenge=challenge, code=wrong)).member.result \
            == "refused"
    assert bus.run(VerifyOtp(origin=origin("Otp"), challenge=challenge, code=code)).member.result \
        == "refused"  # two wrong codes spent it


def test_an_expired_password_must_be_changed_and_the_scheduler_marks_it() -> None:
    bus = MemberBus("membership: {password: {expire_after: 90d, deactivate_expired: true}}\n")
    member_id = active(bus)
    assert sign_in(bus, member_id, True).result == "signed_in"
    bus.advance(days=91)
    bus.run(SweepCredentials(origin=origin("Sweep"), action="expire_passwords",
                             member_ids=(member_id,)))
    member = bus.uow.members.get(member_id)
    assert member is not None and member.password_expired_at is not None
    expired = sign_in(bus, member_id, True)
    assert expired.result == "expired" and expired.change_token
    assert not [n for n in bus.uow.notifications.committed if n.kind == "password_reset"]
    bus.run(CompletePasswordReset(origin=origin("Reset"), token=expired.change_token,
                                  password_hash="new$hash", history_checked_against=(), reused=False))
    member = bus.uow.members.get(member_id)
    assert member is not None and member.password_expired_at is None


def test_a_hash_upgrade_rides_on_a_successful_sign_in() -> None:
    bus = MemberBus()
    member_id = active(bus)
    sign_in(bus, member_id, True, new_hash="pbkdf2_sha256$2$new")
    member = bus.uow.members.get(member_id)
    assert member is not None and member.password_hash == "pbkdf2_sha256$2$new"


def test_a_profile_change_is_audited_and_tells_the_old_address() -> None:
    bus = MemberBus()
    member_id = active(bus)
    bus.run(UpdateProfile(origin=origin("Profile"), member_id=member_id,
                          preferences=PreferenceInput(email="new@example.org", locale="es-US"),
                          address=Address(lines=("2 Elm St",), city="Boston", postal_code="02139")))
    [note] = [n for n in bus.uow.notifications.committed if n.kind == "profile_contact_changed"]
    assert note.recipient == "ann@example.org" and note.context["changed"] == "email"
    member = bus.uow.members.get(member_id)
    assert member is not None and member.preferences.email == "new@example.org"
    assert member.address is not None and member.address.city == "Boston"
    fields = [a.detail.get("fields") for a in bus.uow.audit.committed if a.action == "member.preferences"]
    assert "address" in fields and any(f and "email" in f and "locale" in f for f in fields)
    assert "ann@example.org" not in str([a.detail for a in bus.uow.audit.committed])


def test_a_staff_unlock_needs_a_lock_and_a_reason() -> None:
    bus = MemberBus(CREDENTIAL_EVENTS)
    member_id = active(bus)
    for _ in range(3):
        sign_in(bus, member_id, False)
    bus.run(UnlockMember(origin=origin("Unlock"), member_id=member_id, reason="called the desk",
                         actor=Actor(type="staff", id="u-7")))
    [event] = bus.events("member.unlocked")
    assert event["actor"] == {"type": "staff", "id": "u-7"}
    assert sign_in(bus, member_id, True).result == "signed_in"


def test_an_unknown_username_is_audited_like_a_wrong_password_without_its_name() -> None:
    bus = MemberBus()
    result = bus.run(SignIn(origin=origin("SignIn"), member_id="", verified=False,
                            checked_against="")).member
    assert result == SignInResult(result="refused")
    [entry] = [a for a in bus.uow.audit.committed if a.action == "member.sign_in"]
    assert (entry.actor, entry.outcome) == ("member:unknown", "refused")


def test_the_code_goes_by_text_when_the_member_prefers_text() -> None:
    bus = MemberBus("membership: {two_factor: {enabled: true}}\n")
    member_id = active(bus)
    bus.run(UpdateProfile(origin=origin("Profile"), member_id=member_id, address=None,
                          preferences=PreferenceInput(mobile="+1 617 555 0100", carrier="verizon",
                                                      communication=Communication.TEXT)))
    assert sign_in(bus, member_id, True).result == "challenge"
    [code] = [n for n in bus.uow.notifications.committed if n.kind == "otp_code"]
    assert (code.channel, code.recipient, code.carrier) == ("sms", "+1 617 555 0100", "verizon")
    assert code.context["valid_minutes"] == "6"


def test_a_profile_change_to_text_needs_a_carrier_that_still_delivers() -> None:
    bus = MemberBus()
    member_id = active(bus)
    with pytest.raises(PolicyRefused, match="carrier"):
        bus.run(UpdateProfile(origin=origin("Profile"), member_id=member_id, address=None,
                              preferences=PreferenceInput(mobile="+1 617 555 0100", carrier="att",
                                                          communication=Communication.TEXT)))


def test_a_wrong_current_password_at_a_change_counts_as_a_failed_sign_in() -> None:
    from engine.member_commands import ChangePassword

    bus = MemberBus()
    member_id = active(bus)

    def change(ok: bool) -> str:
        return str(bus.run(ChangePassword(
            origin=origin("Change"), member_id=member_id, verified=ok, checked_against=HASH,
            password_hash="new$hash", history_checked_against=(), reused=False)).member.result)

    assert [change(False) for _ in range(3)] == ["refused"] * 3
    assert sign_in(bus, member_id, True).result == "locked"
    assert change(True) == "refused"  # not while locked
    bus.advance(minutes=5)
    assert change(True) == "signed_in"
    member = bus.uow.members.get(member_id)
    assert member is not None and member.password_hash == "new$hash"
    assert member.password_history == (HASH,)
