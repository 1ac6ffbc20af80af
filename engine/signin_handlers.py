"""Sign-in command handlers: failed sign-ins and locks, two-factor codes, expired passwords,
the member's profile, staff unlocks and the scheduler's sweeps (specification 5.1-5.3, 4.3).

The password was verified on the hashing pool before the command was built; the command
says against which stored hash, and a result for a hash that changed meanwhile counts as a
failure. Every answer a caller may show is in ``SignInResult``: the generic ``refused`` for
wrong credentials whatever the lock, ``locked`` only for valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.audit import AuditEntry
from engine.commands import Outcome
from engine.errors import Conflict, NotFound
from engine.member_commands import (
    Actor,
    ChangePassword,
    SignIn,
    SignInResult,
    SweepCredentials,
    UnlockMember,
    UpdateProfile,
    VerifyOtp,
)
from engine.member_effects import Effects, Secrets
from engine.uow import UnitOfWork
from membership import errors as merr
from membership.lockout import Lockout
from membership.model import Member, MembershipStatus, Preferences
from membership.otp import issue_challenge
from membership.policies import MembershipPolicies
from membership.tokens import ActivationToken, RandomSource, SecretBox, new_token_text, token_digest

__all__ = ["SignInHandlers", "SignInServices"]

Handler = Callable[[Any, UnitOfWork], Outcome]
SYSTEM = Actor(type="system", id="scheduler")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInServices:
    policies: MembershipPolicies
    lockout: Lockout
    random: RandomSource
    box: SecretBox
    effects: Effects
    now: Callable[[], datetime]
    #: Raises ``PolicyViolation`` when text messages are chosen without a usable mobile number
    #: and carrier (the Workbench's check of a preferences change).
    check_channels: Callable[[Preferences, datetime], None]


def _member_actor(member: Member) -> Actor:
    return Actor(type="member", id=member.id)


def _outcome(member: Member, result: SignInResult) -> Outcome:
    return Outcome("applied", (member.patient_id,), member=result)


class SignInHandlers:
    """One method per sign-in command; ``table`` lists them for the membership dispatcher."""

    def __init__(self, services: SignInServices) -> None:
        self._s = services

    def table(self) -> dict[type, Handler]:
        return {SignIn: self.sign_in, VerifyOtp: self.verify_otp, UpdateProfile: self.profile,
                UnlockMember: self.unlock, SweepCredentials: self.sweep,
                ChangePassword: self.change_password}

    def _write(self, member: Member, uow: UnitOfWork, command: Any, actor: Actor | None = None,
               secrets: Secrets | None = None) -> None:
        uow.members.changed(member)
        self._s.effects.apply(member, uow, actor=actor or _member_actor(member),
                              correlation_id=command.origin.control_id, secrets=secrets)

    def _member(self, uow: UnitOfWork, member_id: str) -> Member:
        member = uow.members.get(member_id)
        if member is None:
            raise NotFound(f"no member {member_id}", "member_id")
        return member

    # -- the password step --------------------------------------------------------------------

    def sign_in(self, command: SignIn, uow: UnitOfWork) -> Outcome:
        now = self._s.now()
        member = uow.members.get(command.member_id) if command.member_id else None
        if member is None:  # an unknown username: audited (never the name), like a wrong password
            uow.audit.add(AuditEntry(actor="member:unknown", action="member.sign_in",
                                     outcome="refused", reason="no member with a password has this username",
                                     detail={"request": command.origin.control_id[:200]}, at=now))
            return Outcome("applied", member=SignInResult(result="refused"))
        verified = command.verified and command.checked_against == member.password_hash
        member.end_lock_if_over(now)
        if member.lockout.locked(now):  # nothing is counted while locked
            member.sign_in_while_locked(verified=verified, now=now)
            result = SignInResult(result="locked" if verified else "refused", member_id=member.id,
                                  locked_until=member.lockout.locked_until if verified else None)
        elif not verified:
            member.sign_in_failed(now=now, lockout=self._s.lockout)
            result = SignInResult(result="refused")
        else:
            member.sign_in_succeeded(now=now)
            if command.new_hash is not None:
                member.upgrade_password_hash(expected=command.checked_against,
                                             new_hash=command.new_hash, now=now)
            result, secrets = self._after_password(member, now)
            self._write(member, uow, command, secrets=secrets)
            return _outcome(member, result)
        self._write(member, uow, command)
        return _outcome(member, result)

    def _after_password(self, member: Member, now: datetime) -> tuple[SignInResult, Secrets]:
        """Valid credentials, not locked: inactive, expired, a code to send, or signed in."""
        policies = self._s.policies
        if member.membership_status is not MembershipStatus.ACTIVE:
            return SignInResult(result="inactive", member_id=member.id), Secrets()
        if member.password_expired(now, policies.password.expire_after):
            text = new_token_text(self._s.random)
            member.request_password_reset(
                reset=ActivationToken.issue(text, self._s.box, now, policies.password_reset_expiration),
                now=now, actor=member.id, reason="the password expired", notify=False)
            return SignInResult(result="expired", member_id=member.id, change_token=text), Secrets()
        if policies.two_factor.enabled:
            otp, challenge, code = issue_challenge(self._s.random, now, policies.two_factor.valid_for,
                                                   policies.two_factor.digits)
            member.issue_otp(challenge=otp, now=now)
            return (SignInResult(result="challenge", member_id=member.id, challenge=challenge),
                    Secrets(otp_code=code))
        return SignInResult(result="signed_in", member_id=member.id), Secrets()

    # -- the code step ------------------------------------------------------------------------

    def verify_otp(self, command: VerifyOtp, uow: UnitOfWork) -> Outcome:
        now = self._s.now()
        member = uow.members.by_otp(token_digest(command.challenge))
        if member is None:
            return Outcome("applied", member=SignInResult(result="refused"))
        check = member.check_otp(challenge=command.challenge, code=command.code, now=now,
                                 max_attempts=self._s.policies.two_factor.max_attempts)
        self._write(member, uow, command)
        if not check.ok:
            return _outcome(member, SignInResult(result="refused"))
        if member.lockout.locked(now) or member.membership_status is not MembershipStatus.ACTIVE:
            return _outcome(member, SignInResult(result="refused"))
        return _outcome(member, SignInResult(result="signed_in", member_id=member.id))

    def change_password(self, command: ChangePassword, uow: UnitOfWork) -> Outcome:
        """A wrong current password counts as a failed sign-in (the route is no way around
        the lockout); a reused one is refused; else the password changes."""
        now, member = self._s.now(), self._member(uow, command.member_id)
        checked = command.history_checked_against
        if command.checked_against != member.password_hash or \
                checked != member.password_history[:len(checked)]:
            raise Conflict("the password changed meanwhile: try again", "password")
        if not command.verified or member.lockout.locked(now):
            if not member.lockout.locked(now):
                member.sign_in_failed(now=now, lockout=self._s.lockout)
            self._write(member, uow, command)
            return _outcome(member, SignInResult(result="refused"))
        if command.reused:
            history = self._s.policies.password.history
            raise merr.PolicyViolation(f"the password must not be one of your last {history} passwords")
        member.change_password(password_hash=command.password_hash,
                               history=self._s.policies.password.history, now=now)
        self._write(member, uow, command)
        return _outcome(member, SignInResult(result="signed_in", member_id=member.id))

    # -- profile, unlock, sweeps --------------------------------------------------------------

    def profile(self, command: UpdateProfile, uow: UnitOfWork) -> Outcome:
        member, now = self._member(uow, command.member_id), self._s.now()
        preferences = command.preferences.applied_to(member.preferences)
        self._s.check_channels(preferences, now)
        member.update_profile(preferences=preferences, address=command.address, now=now)
        self._write(member, uow, command)
        return _outcome(member, SignInResult(result="signed_in", member_id=member.id))

    def unlock(self, command: UnlockMember, uow: UnitOfWork) -> Outcome:
        member = self._member(uow, command.member_id)
        member.unlock(reason=command.reason, now=self._s.now(), actor=command.actor.id)
        self._write(member, uow, command, actor=command.actor)
        return _outcome(member, SignInResult(result="signed_in", member_id=member.id))

    def sweep(self, command: SweepCredentials, uow: UnitOfWork) -> Outcome:
        """Mark expired passwords / end timed locks; members already done are skipped."""
        now, expire_after = self._s.now(), self._s.policies.password.expire_after
        done = 0
        for member_id in command.member_ids:
            member = uow.members.get(member_id)
            if member is None:
                continue
            if command.action == "end_locks":
                changed = member.end_lock_if_over(now)
            else:
                changed = expire_after is not None and \
                    member.deactivate_expired_password(now=now, expire_after=expire_after)
            if changed:
                self._write(member, uow, command, actor=SYSTEM)
                done += 1
        return Outcome("applied", detail=f"{done} member(s) changed", member=done)

