"""Staff members: their roles, their bearer tokens, and the directory that knows them.

A staff token is ``pbs_`` followed by 43 URL-safe characters: 256 bits from ``secrets``.
The prefix makes a leaked token easy to recognise in a scan. Only the token's SHA-256 digest
is stored; with 256 random bits there is nothing to guess, so a fast unsalted digest is
safe and lets the directory find a token with one indexed lookup. The digest found is then
compared with the presented one in constant time. Tokens and digests are never logged.

``administrator`` manages staff, reads the audit log and passes every role check.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from hmac import compare_digest

from engine.domain.clock import Clock, IdSource
from engine.errors import Conflict, InvalidMessage, NotFound
from engine.limits import STAFF_NAME_CHARS

__all__ = [
    "TOKEN_PREFIX",
    "Role",
    "StaffDirectory",
    "StaffEntry",
    "StaffPrincipal",
    "UnknownRole",
    "new_staff_token",
    "token_digest",
]

TOKEN_PREFIX = "pbs_"  # noqa: S105 - a prefix, not a secret
_TOKEN_BYTES = 32  # 256 bits
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")
#: Printable, no blank at either end; no lone surrogate either (a command line can carry
#: one for bytes that are not UTF-8, and no database stores it).
_PRINTABLE = r"[^\x00-\x1f\x7f\ud800-\udfff]"
_EDGE = r"[^\s\x00-\x1f\x7f\ud800-\udfff]"
_NAME = re.compile(f"^{_EDGE}(?:{_PRINTABLE}{{0,{STAFF_NAME_CHARS - 2}}}{_EDGE})?$")


class Role(StrEnum):
    """What a staff member may do; the values are written as the specification writes them."""

    DIRECT_ENROLLMENT_USER = "Direct Enrollment User"
    MEMBER_ACCOUNT_MANAGER = "Member Account Manager"
    ENROLLMENT_REQUEST_AGENT = "enrollment request agent"
    ENROLLMENT_EXCEPTION_AGENT = "enrollment exception agent"
    ADMINISTRATOR = "administrator"
    ACCOUNT_STATUS_CLIENT = "account status client"  # external systems: GET /accounts/status

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named by ``text``: any case, ``-`` or ``_`` for spaces (shell-friendly)."""
        wanted = _fold(text)
        for role in cls:
            if _fold(role.value) == wanted:
                return role
        raise UnknownRole(text)


def _fold(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold()


class UnknownRole(InvalidMessage):
    """A role name that is not one of ``Role``; the message lists the valid ones."""

    def __init__(self, text: str) -> None:
        valid = ", ".join(f'"{role.value}"' for role in Role)
        super().__init__(f"unknown role {text!r}; valid roles: {valid}")
        self.text = text


@dataclass(frozen=True)
class StaffPrincipal:
    """An authenticated staff member (or external system) and its roles."""

    id: str
    name: str
    roles: frozenset[Role]

    def has_any(self, *roles: Role) -> bool:
        """Whether it holds one of ``roles``; an administrator passes every check."""
        return Role.ADMINISTRATOR in self.roles or not self.roles.isdisjoint(roles)

    @property
    def actor(self) -> str:
        """How the audit log names it (staff names are never reused, so this is unambiguous)."""
        return f"staff:{self.name}"


@dataclass(frozen=True, kw_only=True)
class StaffEntry:
    """A staff member as listed: never a token or its digest."""

    id: str
    name: str
    roles: frozenset[Role]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def principal(self) -> StaffPrincipal:
        return StaffPrincipal(self.id, self.name, self.roles)


def new_staff_token() -> str:
    """A fresh bearer token: the prefix and 256 bits from ``secrets``."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> str | None:
    """The hex SHA-256 digest stored for ``token``; None when it is not shaped like one."""
    if not _TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class StaffDirectory(ABC):
    """Port: the staff members, their roles and the digests of their tokens.

    The token rules live here, once; a store implements the four small storage methods.
    """

    def __init__(self, clock: Clock, ids: IdSource) -> None:
        self._clock = clock
        self._ids = ids

    def authenticate(self, token: str) -> StaffPrincipal | None:
        """The staff member holding ``token``; None when it is malformed, unknown or revoked."""
        digest = token_digest(token)
        if digest is None:
            return None
        found = self._find_by_digest(digest)
        # The lookup matched on the digest already; comparing again in constant time guards
        # against a store whose lookup is looser than equality (collations, truncation).
        if found is None or not compare_digest(found[1], digest) or found[0].revoked_at is not None:
            return None
        return found[0].principal

    def add(self, name: str, roles: frozenset[Role]) -> tuple[StaffPrincipal, str]:
        """Register a staff member; the token is returned once and only its digest is kept."""
        if not _NAME.fullmatch(name):
            raise InvalidMessage(f"a staff name is 1 to {STAFF_NAME_CHARS} printable characters, "
                                 "no spaces at either end")
        if not roles:
            raise InvalidMessage("a staff member needs at least one role")
        if self._find(name) is not None:
            raise Conflict(f"a staff member named {name!r} (or with that id) exists already; "
                           "names are never reused")
        token = new_staff_token()
        entry = StaffEntry(id=self._ids.new_id(), name=name, roles=frozenset(roles),
                           created_at=self._clock.now())
        self._insert(entry, token_digest(token) or "")
        return entry.principal, token

    def revoke(self, name_or_id: str) -> StaffEntry:
        """Revoke a staff member's token at once (an id is matched before a name)."""
        entry = self._find(name_or_id)
        if entry is None:
            raise NotFound(f"no staff member with the name or id {name_or_id!r}")
        if entry.revoked_at is not None:
            raise Conflict(f"{entry.name} was revoked already, at "
                           f"{entry.revoked_at.isoformat(timespec='seconds')}")
        revoked = replace(entry, revoked_at=self._clock.now())
        self._set_revoked(revoked)
        return revoked

    @abstractmethod
    def list(self) -> list[StaffEntry]:
        """Every staff member, revoked ones included, oldest first."""

    @abstractmethod
    def _find(self, name_or_id: str) -> StaffEntry | None:
        """The entry with this id, else the one with this name."""

    @abstractmethod
    def _find_by_digest(self, digest: str) -> tuple[StaffEntry, str] | None:
        """The entry whose stored digest equals ``digest``, with the stored digest."""

    @abstractmethod
    def _insert(self, entry: StaffEntry, digest: str) -> None:
        """Store a new entry; a name taken meanwhile raises ``Conflict``."""

    @abstractmethod
    def _set_revoked(self, entry: StaffEntry) -> None:
        """Store ``entry.revoked_at``."""
