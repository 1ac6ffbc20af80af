"""What happened to a member: small frozen facts the aggregate records, past tense.

The engine turns them into status events (``member.enrolled`` and the like), notifications
and audit rows in the same transaction. None carries a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

__all__ = [
    "ActivationRefused",
    "MemberActivated",
    "MemberDeactivated",
    "MemberEnrolled",
    "MemberEvent",
    "MemberReactivated",
    "PasswordChanged",
    "PasswordHashUpgraded",
    "PasswordResetRequested",
    "PreferencesChanged",
    "TokenRegenerated",
    "TokenRenewed",
    "TokenResent",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEvent:
    """Base: which member, when, who did it and why. ``action`` names it in the audit log."""

    action: ClassVar[str] = ""
    member_id: str
    patient_id: str
    occurred_at: datetime
    actor: str
    reason: str = ""
    old_status: str | None = None
    new_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEnrolled(MemberEvent):
    action: ClassVar[str] = "member.enroll"
    mode: str
    printed_activation: bool
    proxy_only: bool
    token_expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberActivated(MemberEvent):
    action: ClassVar[str] = "member.activate"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationRefused(MemberEvent):
    """An activation attempt failed; ``reason`` is the precise cause (audit only)."""

    action: ClassVar[str] = "member.activate"
    locked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberDeactivated(MemberEvent):
    action: ClassVar[str] = "member.deactivate"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberReactivated(MemberEvent):
    action: ClassVar[str] = "member.reactivate"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenResent(MemberEvent):
    action: ClassVar[str] = "token.resend"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRenewed(MemberEvent):
    action: ClassVar[str] = "token.renew"
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRegenerated(MemberEvent):
    action: ClassVar[str] = "token.regenerate"
    expires_at: datetime
    notify: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferencesChanged(MemberEvent):
    action: ClassVar[str] = "member.preferences"
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordResetRequested(MemberEvent):
    action: ClassVar[str] = "password.reset"
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChanged(MemberEvent):
    action: ClassVar[str] = "password.change"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordHashUpgraded(MemberEvent):
    action: ClassVar[str] = "password.rehash"
