"""The member aggregate: enrollment status and membership status, kept apart, and every
transition the specification allows as a method that refuses the others.

Enrollment status is No until an activation token exists; issuing the token makes it Yes and
the membership pending at the same moment. Choosing a username and password makes it active
(or inactive/minor below the minimum age); deactivation makes it inactive and reactivation
active again. An expired token leaves the member pending: a Workbench user renews it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from membership import events as ev
from membership.errors import AlreadyEnrolled, PolicyViolation, TransitionRefused
from membership.lockout import Lockout, LockoutState
from membership.otp import OtpChallenge, OtpCheck
from membership.policies import ThrottlePolicy
from membership.tokens import ActivationToken
from mpi.model import Address

__all__ = [
    "Communication",
    "EnrollmentStatus",
    "Member",
    "MembershipStatus",
    "Preferences",
    "refuse_duplicate",
    "require_reason",
]

MAX_REASON = 1000


class EnrollmentStatus(StrEnum):
    NO = "No"
    YES = "Yes"


class MembershipStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    INACTIVE_MINOR = "inactive/minor"


class Communication(StrEnum):
    EMAIL = "email"
    TEXT = "text"
    EMAIL_AND_TEXT = "email_and_text"


@dataclass(frozen=True, slots=True, kw_only=True)
class Preferences:
    """How a member is reached: addresses, the channels chosen, the locale."""

    email: str = ""
    mobile: str = ""
    carrier: str = ""
    communication: Communication = Communication.EMAIL
    locale: str = "en-US"

    @property
    def wants_email(self) -> bool:
        return self.communication is not Communication.TEXT and bool(self.email)

    @property
    def wants_text(self) -> bool:
        return self.communication is not Communication.EMAIL and bool(self.mobile)


def require_reason(reason: str) -> str:
    """Staff changes need a reason for the audit log."""
    text = reason.strip()
    if not text:
        raise PolicyViolation("a reason is required")
    if len(text) > MAX_REASON:
        raise PolicyViolation(f"the reason is longer than {MAX_REASON} characters")
    return text


def _hours_within(hours: int, maximum: timedelta) -> timedelta:
    limit = int(maximum.total_seconds() // 3600)
    if not 1 <= hours <= limit:
        raise PolicyViolation(f"the new expiration must be between 1 and {limit} hours, not {hours}")
    return timedelta(hours=hours)


def refuse_duplicate(existing: Member | None) -> None:
    """A patient who is pending or active is never enrolled twice; the answer says so."""
    if existing is not None and existing.membership_status in (MembershipStatus.PENDING,
                                                                MembershipStatus.ACTIVE):
        raise AlreadyEnrolled(f"the patient is already a {existing.membership_status.value} member",
                              existing.id)
    if existing is not None:
        raise TransitionRefused(f"the patient is an {existing.membership_status.value} member: "
                                "reactivate the membership instead of enrolling again")


@dataclass(slots=True, kw_only=True)
class Member:
    """A portal member (or prospective member) and the MPI patient they are."""

    id: str
    patient_id: str
    enrollment_status: EnrollmentStatus
    membership_status: MembershipStatus
    status_since: datetime
    preferences: Preferences
    proxy_only: bool
    mode: str
    enrolled_by: str
    enrolled_at: datetime
    token: ActivationToken | None
    passphrase_hash: str | None = None
    printed_activation: bool = False
    username: str | None = None
    password_hash: str | None = None
    password_history: tuple[str, ...] = ()
    password_changed_at: datetime | None = None
    reset: ActivationToken | None = None
    activated_at: datetime | None = None
    lockout: LockoutState = field(default_factory=LockoutState)
    otp: OtpChallenge | None = None
    password_expired_at: datetime | None = None  # deactivated by the scheduler (max age)
    address: Address | None = None  # the member's own (for letters), from the portal profile
    version: int = 0
    events: list[ev.MemberEvent] = field(default_factory=list)

    # -- enrollment -------------------------------------------------------------------------

    @classmethod
    def enroll(cls, *, member_id: str, patient_id: str, preferences: Preferences, proxy_only: bool,
               mode: str, enrolled_by: str, token: ActivationToken, passphrase_hash: str | None,
               printed_activation: bool, now: datetime) -> Member:
        """A new pending member: the token exists, so enrollment is Yes and membership pending."""
        member = cls(id=member_id, patient_id=patient_id, enrollment_status=EnrollmentStatus.YES,
                     membership_status=MembershipStatus.PENDING, status_since=now,
                     preferences=preferences, proxy_only=proxy_only, mode=mode,
                     enrolled_by=enrolled_by, enrolled_at=now, token=token,
                     passphrase_hash=passphrase_hash, printed_activation=printed_activation)
        member._record(ev.MemberEnrolled, now, enrolled_by, new_status=MembershipStatus.PENDING,
                       mode=mode, printed_activation=printed_activation, proxy_only=proxy_only,
                       token_expires_at=token.expires_at)
        return member

    # -- the activation token (Workbench, Member Account Manager) ----------------------------

    def _pending_token(self, what: str) -> ActivationToken:
        if self.membership_status is not MembershipStatus.PENDING or self.token is None:
            raise TransitionRefused(f"cannot {what}: the member is {self.membership_status.value}, "
                                    "not pending")
        return self.token

    def resend_token(self, *, now: datetime, actor: str) -> str:
        """The sealed copy of the same token, to send again to the current preferences."""
        token = self._pending_token("resend the activation token")
        self._record(ev.TokenResent, now, actor)
        return token.sealed

    def renew_token(self, *, hours: int, reason: str, maximum: timedelta, now: datetime,
                    actor: str) -> None:
        """The same token, valid again for ``hours`` from now; no notification."""
        token = self._pending_token("renew the activation token")
        valid_for = _hours_within(hours, maximum)
        reason = require_reason(reason)
        self.token = token.renewed(now, valid_for)
        self._record(ev.TokenRenewed, now, actor, reason=reason, expires_at=self.token.expires_at)

    def regenerate_token(self, *, new_token: ActivationToken, hours: int, reason: str,
                         maximum: timedelta, notify: bool, now: datetime, actor: str) -> None:
        """A new token replaces the old one at once (the old one no longer matches)."""
        self._pending_token("generate a new activation token")
        valid_for = _hours_within(hours, maximum)
        reason = require_reason(reason)
        self.token = replace(new_token, issued_at=now, expires_at=now + valid_for)
        self._record(ev.TokenRegenerated, now, actor, reason=reason,
                     expires_at=self.token.expires_at, notify=notify)

    # -- activation (the member) -------------------------------------------------------------

    def activation_refusal(self, *, token: str, now: datetime) -> str | None:
        """Why ``token`` cannot activate this member now (None when it can)."""
        if self.token is None or not self.token.matches(token):
            return "the token does not match the member's current token"
        if self.membership_status is not MembershipStatus.PENDING:
            return f"the member is {self.membership_status.value}, not pending"
        if self.token.locked(now):
            return "the token is locked after repeated failed attempts"
        if self.token.expired(now):
            return "the token expired"
        return None

    def refuse_activation(self, *, reason: str, now: datetime, throttle: ThrottlePolicy,
                          count: bool = True) -> None:
        """Record a failed attempt (counted against the token unless it was already locked)."""
        locked = False
        if count and self.token is not None and not self.token.locked(now):
            self.token = self.token.failed(now, throttle.failures, throttle.window, throttle.lock)
            locked = self.token.locked(now)
        self._record(ev.ActivationRefused, now, self.id, reason=reason, locked=locked)

    def activate(self, *, token: str, username: str, password_hash: str,
                 preferences: Preferences, minor: bool, now: datetime) -> None:
        """Pending -> active (inactive/minor below the minimum age): the token is spent."""
        refusal = self.activation_refusal(token=token, now=now)
        if refusal is not None:
            raise TransitionRefused(refusal)
        old = self.membership_status
        self.membership_status = MembershipStatus.INACTIVE_MINOR if minor else MembershipStatus.ACTIVE
        self.status_since = self.activated_at = now
        self.username = username
        self._set_password(password_hash, now, history=0)
        self.preferences = preferences
        self.token = None
        self.passphrase_hash = None  # used once, at activation
        self._record(ev.MemberActivated, now, self.id, old_status=old,
                     new_status=self.membership_status)

    # -- deactivation and reactivation (Workbench) ------------------------------------------

    def deactivate(self, *, reason: str, now: datetime, actor: str) -> None:
        if self.membership_status not in (MembershipStatus.ACTIVE, MembershipStatus.INACTIVE_MINOR):
            raise TransitionRefused(f"only an activated member can be deactivated; this member is "
                                    f"{self.membership_status.value}")
        self._change_status(MembershipStatus.INACTIVE, ev.MemberDeactivated, reason, now, actor)

    def reactivate(self, *, reason: str, now: datetime, actor: str) -> None:
        if self.membership_status is not MembershipStatus.INACTIVE:
            raise TransitionRefused(f"only an inactive member can be reactivated; this member is "
                                    f"{self.membership_status.value}")
        self._change_status(MembershipStatus.ACTIVE, ev.MemberReactivated, reason, now, actor)

    def _change_status(self, new: MembershipStatus, event: type[ev.MemberEvent], reason: str,
                       now: datetime, actor: str) -> None:
        reason = require_reason(reason)
        old, self.membership_status, self.status_since = self.membership_status, new, now
        self._record(event, now, actor, reason=reason, old_status=old, new_status=new)

    # -- preferences and passwords ----------------------------------------------------------

    def update_preferences(self, *, preferences: Preferences, reason: str, now: datetime,
                           actor: str) -> None:
        reason = require_reason(reason) if actor != self.id else reason
        changed = tuple(name for name in ("email", "mobile", "carrier", "communication", "locale")
                        if getattr(preferences, name) != getattr(self.preferences, name))
        self.preferences = preferences
        self._record(ev.PreferencesChanged, now, actor, reason=reason, fields=changed)

    def request_password_reset(self, *, reset: ActivationToken, now: datetime, actor: str,
                               reason: str = "", notify: bool = True) -> None:
        """A new single-use reset token replaces any earlier one. ``notify`` False: the token
        goes straight to the member who proved the password (an expired one), not by mail."""
        if self.membership_status is not MembershipStatus.ACTIVE or self.password_hash is None:
            raise TransitionRefused(f"a password reset needs an active member; this member is "
                                    f"{self.membership_status.value}")
        self.reset = reset
        self._record(ev.PasswordResetRequested, now, actor, reason=reason, expires_at=reset.expires_at,
                     notify=notify)

    def reset_refusal(self, *, token: str, now: datetime) -> str | None:
        if self.reset is None or not self.reset.matches(token):
            return "the reset token does not match"
        if self.reset.expired(now):
            return "the reset token expired"
        if self.membership_status is not MembershipStatus.ACTIVE:
            return f"the member is {self.membership_status.value}"
        return None

    def complete_password_reset(self, *, token: str, password_hash: str, history: int,
                                now: datetime) -> None:
        refusal = self.reset_refusal(token=token, now=now)
        if refusal is not None:
            raise TransitionRefused(refusal)
        self._set_password(password_hash, now, history=history)
        self.reset = None
        self.otp = None
        self.password_expired_at = None
        self._record(ev.PasswordChanged, now, self.id)
        if self.lockout.has_lock:  # a reset is how a member unlocks (5.2), timed or not
            self._record(ev.MemberUnlocked, now, self.id, reason="password reset")
        self.lockout = Lockout.cleared()

    def change_password(self, *, password_hash: str, history: int, now: datetime) -> None:
        """The signed-in member's own change (the current password was verified)."""
        if self.membership_status is not MembershipStatus.ACTIVE or self.password_hash is None:
            raise TransitionRefused(f"the member is {self.membership_status.value}")
        self._set_password(password_hash, now, history=history)
        self.password_expired_at = None
        self._record(ev.PasswordChanged, now, self.id)

    def upgrade_password_hash(self, *, expected: str, new_hash: str, now: datetime) -> bool:
        """Store a rehash made at sign-in, unless the password changed meanwhile."""
        if self.password_hash != expected:
            return False
        self.password_hash = new_hash
        self._record(ev.PasswordHashUpgraded, now, self.id)
        return True

    def _set_password(self, password_hash: str, now: datetime, *, history: int) -> None:
        if self.password_hash is not None and history > 0:
            self.password_history = (self.password_hash, *self.password_history)[:history]
        self.password_hash = password_hash
        self.password_changed_at = now

    def password_expired(self, now: datetime, expire_after: timedelta | None) -> bool:
        """Deactivated by the scheduler, or older than the maximum age: change it to sign in."""
        if self.password_expired_at is not None:
            return True
        changed = self.password_changed_at
        return expire_after is not None and changed is not None and now - changed > expire_after

    def deactivate_expired_password(self, *, now: datetime, expire_after: timedelta) -> bool:
        """The scheduler's "deactivate expired passwords": mark it once; True when marked."""
        if self.password_expired_at is not None or self.password_hash is None \
                or not self.password_expired(now, expire_after):
            return False
        self.password_expired_at = now
        self._record(ev.PasswordExpired, now, "system:scheduler",
                     reason=f"older than {expire_after}")
        return True

    # -- sign-in: lockout and two-factor codes (5.2, 5.3) -----------------------------------

    def sign_in_failed(self, *, now: datetime, lockout: Lockout) -> None:
        """A wrong password: counted by the lockout mechanisms, which may lock the account."""
        self.end_lock_if_over(now)
        self.lockout, lock = lockout.failed(self.lockout, now)
        self._record(ev.SignInRefused, now, self.id, reason="wrong password")
        if lock is not None:
            self._record(ev.MemberLocked, now, self.id, locked_until=lock.until,
                         mechanism=lock.mechanism,
                         reason=f"{lock.mechanism} lockout after failed sign-ins")

    def sign_in_while_locked(self, *, verified: bool, now: datetime) -> None:
        """Any sign-in while locked is refused and not counted (audited with the truth)."""
        self._record(ev.SignInRefused, now, self.id, reason="locked; the password was "
                     + ("correct" if verified else "wrong"))

    def sign_in_succeeded(self, *, now: datetime) -> None:
        """Valid credentials while not locked: the failures are forgotten."""
        self.end_lock_if_over(now)
        self.lockout = Lockout.succeeded(self.lockout, now)

    def end_lock_if_over(self, now: datetime) -> bool:
        """Forget a timed lock whose time is over (``member.unlocked``); True when it did."""
        if not self.lockout.lock_ended(now):
            return False
        self.lockout = Lockout.cleared()
        self._record(ev.MemberUnlocked, now, "system:lockout", reason="the lock period ended")
        return True

    def unlock(self, *, reason: str, now: datetime, actor: str) -> None:
        """A Member Account Manager clears a lock (and the failures), with a reason."""
        reason = require_reason(reason)
        if not self.lockout.locked(now):
            raise TransitionRefused("the account is not locked")
        self.lockout = Lockout.cleared()
        self._record(ev.MemberUnlocked, now, actor, reason=reason)

    def issue_otp(self, *, challenge: OtpChallenge, now: datetime) -> None:
        """A new two-factor challenge replaces the old one (whose code stops working)."""
        self.otp = challenge
        self._record(ev.OtpIssued, now, self.id, expires_at=challenge.expires_at)

    def check_otp(self, *, challenge: str, code: str, now: datetime, max_attempts: int) -> OtpCheck:
        """Accept the code once, within its lifetime, in at most ``max_attempts`` tries."""
        current = self.otp
        if current is None:
            return self._otp_refused(OtpCheck(False, "no challenge is open", spent=True), now)
        if current.expired(now):
            self.otp = None
            return self._otp_refused(OtpCheck(False, "the code expired", spent=True), now)
        if current.matches(challenge, code):
            self.otp = None  # single use
            return OtpCheck(True)
        self.otp = current.attempted()
        spent = self.otp.attempts >= max_attempts
        if spent:
            self.otp = None
        return self._otp_refused(OtpCheck(False, "wrong code", spent=spent), now)

    def _otp_refused(self, check: OtpCheck, now: datetime) -> OtpCheck:
        self._record(ev.OtpRefused, now, self.id, reason=check.reason)
        return check

    # -- the portal profile (4.3) -----------------------------------------------------------

    def update_profile(self, *, preferences: Preferences, address: Address | None,
                       now: datetime) -> None:
        """The member's own change: audited; a changed e-mail or mobile tells the old one."""
        old = self.preferences
        for channel, before, after in (("email", old.email, preferences.email),
                                       ("sms", old.mobile, preferences.mobile)):
            if before and before != after:
                self._record(ev.ContactChanged, now, self.id, channel=channel, old_recipient=before,
                             old_carrier=old.carrier if channel == "sms" else "")
        if address is not None and address != self.address:
            self.address = address
            self._record(ev.PreferencesChanged, now, self.id, fields=("address",))
        if preferences != old:
            self.update_preferences(preferences=preferences, reason="", now=now, actor=self.id)

    # -- events -------------------------------------------------------------------------------

    def _record(self, event: type[ev.MemberEvent], now: datetime, actor: str, **extra: object) -> None:
        self.events.append(event(member_id=self.id, patient_id=self.patient_id, occurred_at=now,
                                 actor=actor, **extra))  # type: ignore[arg-type]
