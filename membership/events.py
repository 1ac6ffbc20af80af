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
    "ContactChanged",
    "MemberActivated",
    "MemberDeactivated",
    "MemberEnrolled",
    "MemberEvent",
    "MemberLocked",
    "MemberReactivated",
    "MemberUnlocked",
    "OtpIssued",
    "OtpRefused",
    "PasswordChanged",
    "PasswordExpired",
    "PasswordHashUpgraded",
    "PasswordResetRequested",
    "PreferencesChanged",
    "SignInRefused",
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
    notify: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChanged(MemberEvent):
    action: ClassVar[str] = "password.change"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordHashUpgraded(MemberEvent):
    action: ClassVar[str] = "password.rehash"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInRefused(MemberEvent):
    """A sign-in with a wrong password (``reason`` says so; audit only)."""

    action: ClassVar[str] = "member.sign_in"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLocked(MemberEvent):
    """Failed sign-ins locked the account, until ``locked_until`` (None: until a reset)."""

    action: ClassVar[str] = "member.lock"
    locked_until: datetime | None
    mechanism: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberUnlocked(MemberEvent):
    """The lock ended: its time was over, a password reset or a staff member cleared it."""

    action: ClassVar[str] = "member.unlock"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtpIssued(MemberEvent):
    """A two-factor code was sent (the code itself travels beside the event, never in it)."""

    action: ClassVar[str] = "member.otp"
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OtpRefused(MemberEvent):
    action: ClassVar[str] = "member.otp"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordExpired(MemberEvent):
    """The password passed its maximum age and was deactivated: it must be changed."""

    action: ClassVar[str] = "password.expire"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactChanged(MemberEvent):
    """The member's e-mail or mobile changed; the old address is told (channel, recipient)."""

    action: ClassVar[str] = "member.contact"
    channel: str  # "email" or "sms"
    old_recipient: str
    old_carrier: str = ""
