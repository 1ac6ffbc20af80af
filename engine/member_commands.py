"""Membership commands: what the enrollment queue, the Workbench and the portal ask the core.

Slow work (hashing a passphrase or password, verifying one) is done by the adapter on a
thread pool *before* the command is built: commands carry hashes and verification results,
so the writer thread never hashes. A verification result names the hash it was made
against, and the handler applies it only if that hash is still the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from engine.commands import MessageOrigin
from membership.model import Communication, Preferences
from membership.policies import EnrollmentMode
from mpi.model import Address

__all__ = [
    "ActivateMember",
    "Actor",
    "ChangeMembershipStatus",
    "ChangePassword",
    "CompletePasswordReset",
    "EnrollPatient",
    "ManageToken",
    "MemberCommand",
    "MemberView",
    "RequestPasswordReset",
    "SignIn",
    "SignInResult",
    "SweepCredentials",
    "UnlockMember",
    "UpdatePreferences",
    "UpdateProfile",
    "UpgradePasswordHash",
    "VerifyOtp",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who asks: a staff user, an interface (enrolling user), the member, or the system."""

    type: Literal["staff", "interface", "member", "system"]
    id: str
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferenceInput:
    """Preferences as given; None keeps the current (or policy) value."""

    email: str | None = None
    mobile: str | None = None
    carrier: str | None = None
    communication: Communication | None = None
    locale: str | None = None

    def applied_to(self, current: Preferences) -> Preferences:
        """``current`` with every value given here."""
        changes = {name: value for name in ("email", "mobile", "carrier", "communication", "locale")
                   if (value := getattr(self, name)) is not None}
        return replace(current, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollPatient:
    """Enroll the MPI patient with ``identifier`` (``AUTHORITY|VALUE``)."""

    origin: MessageOrigin  # sender "enrollment", control id = request id: idempotent
    mode: EnrollmentMode
    authority: str
    value: str
    preferences: PreferenceInput
    passphrase_hash: str | None
    passphrase: str | None  # kept only to send it with the token, when the policy says so
    enrolling_user: str  # "" -> the configured default enrolling user
    proxy_only: bool
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivateMember:
    """The member's activation: token, checked passphrase and fields, chosen credentials."""

    origin: MessageOrigin
    token: str
    passphrase_ok: bool | None  # None: no passphrase stored, nothing to check
    passphrase_checked_against: str | None
    fields: dict[str, str]
    username: str
    password_hash: str
    preferences: PreferenceInput


@dataclass(frozen=True, slots=True, kw_only=True)
class ManageToken:
    """Workbench: resend, renew or regenerate a pending member's activation token."""

    origin: MessageOrigin
    member_id: str
    action: Literal["resend", "renew", "regenerate"]
    hours: int = 0
    reason: str = ""
    notify: bool = False
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeMembershipStatus:
    origin: MessageOrigin
    member_id: str
    action: Literal["deactivate", "reactivate"]
    reason: str
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatePreferences:
    origin: MessageOrigin
    member_id: str
    preferences: PreferenceInput
    reason: str
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPasswordReset:
    """Staff-initiated password reset: a reset token is sent to the member."""

    origin: MessageOrigin
    member_id: str
    reason: str
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletePasswordReset:
    origin: MessageOrigin
    token: str
    password_hash: str
    history_checked_against: tuple[str, ...]  # the hashes the new password was checked against
    reused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradePasswordHash:
    """Store a hash made with the current hasher after a successful sign-in."""

    origin: MessageOrigin
    member_id: str
    expected: str
    new_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignIn:
    """A sign-in whose password was verified on the hashing pool against ``checked_against``
    (``new_hash``: the same password hashed with the current hasher, when it must be upgraded).
    Sent when something must be written: a failure, a lock, a challenge, an upgrade."""

    origin: MessageOrigin
    member_id: str
    verified: bool
    checked_against: str
    new_hash: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyOtp:
    """The second step of a two-factor sign-in: the challenge id and the code received."""

    origin: MessageOrigin
    challenge: str
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateProfile:
    """The member's own profile change (4.3): only the fields the policy lets them change."""

    origin: MessageOrigin
    member_id: str
    preferences: PreferenceInput
    address: Address | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePassword:
    """A signed-in member's new password: the current one verified against
    ``checked_against``, the new one checked against ``history_checked_against``."""

    origin: MessageOrigin
    member_id: str
    verified: bool
    checked_against: str
    password_hash: str
    history_checked_against: tuple[str, ...]
    reused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlockMember:
    """A Member Account Manager clears a lock, with a reason."""

    origin: MessageOrigin
    member_id: str
    reason: str
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepCredentials:
    """The scheduler: mark these members' expired passwords, or end their timed locks."""

    origin: MessageOrigin
    action: Literal["expire_passwords", "end_locks"]
    member_ids: tuple[str, ...]


MemberCommand = (EnrollPatient | ActivateMember | ManageToken | ChangeMembershipStatus
                 | UpdatePreferences | RequestPasswordReset | CompletePasswordReset
                 | UpgradePasswordHash | SignIn | VerifyOtp | UpdateProfile | UnlockMember
                 | SweepCredentials | ChangePassword)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInResult:
    """What a sign-in step came to. ``challenge`` (two-factor) and ``change_token`` (an
    expired password) are secrets for the caller's answer only, never stored in clear."""

    result: Literal["signed_in", "refused", "locked", "challenge", "inactive", "expired"]
    member_id: str = ""
    locked_until: datetime | None = None
    challenge: str = ""
    change_token: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberView:
    """A member's statuses, as answers report them."""

    member_id: str
    patient_id: str
    enrollment_status: str
    membership_status: str
    status_since: datetime
    printed_activation: bool = False
    refused: str = ""  # a failed activation: the precise reason (audit only, never shown)
    problems: tuple[str, ...] = field(default_factory=tuple)
