"""Membership command handlers: ``mpi`` and ``membership`` glued in one unit of work.

Each handler finds the member (or the MPI patient), calls one domain method and hands the
events it recorded to ``Effects`` (status events, notifications, audit rows), all in the
transaction the group committer commits. Domain refusals become the engine's errors here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from engine.audit import AuditEntry
from engine.commands import Outcome
from engine.domain.clock import Clock, IdSource
from engine.errors import AlreadyMember, Conflict, InvalidMessage, NotFound, PolicyRefused
from engine.member_commands import (
    ActivateMember,
    Actor,
    ChangeMembershipStatus,
    CompletePasswordReset,
    EnrollPatient,
    ManageToken,
    MemberCommand,
    MemberView,
    PreferenceInput,
    RequestPasswordReset,
    UpdatePreferences,
    UpgradePasswordHash,
)
from engine.member_effects import Effects, Secrets
from engine.notification_rules import NotificationRules
from engine.signin_handlers import SignInHandlers, SignInServices
from engine.uow import UnitOfWork
from membership import errors as merr
from membership.enrollment import age_on, choose_email, fields_match
from membership.lockout import Lockout, lockout_for
from membership.model import Member, Preferences, refuse_duplicate
from membership.policies import MembershipPolicies
from membership.tokens import ActivationToken, RandomSource, SecretBox, new_token_text, token_digest
from mpi.model import Identifier, Patient

__all__ = ["USERNAME", "MemberHandlers", "find_patient", "view_of"]

#: Usernames: 3-150 letters, digits and . _ @ + - (no spaces, nothing to escape anywhere).
USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,150}$")


def view_of(member: Member, refused: str = "") -> MemberView:
    return MemberView(member_id=member.id, patient_id=member.patient_id,
                      enrollment_status=member.enrollment_status.value,
                      membership_status=member.membership_status.value,
                      status_since=member.status_since, printed_activation=member.printed_activation,
                      refused=refused)


def find_patient(uow: UnitOfWork, authority: str, value: str) -> Patient | None:
    """The surviving MPI patient of the active record carrying ``authority|value``."""
    for record in uow.mpi.records_with_identifier(Identifier(value, authority)):
        if record.is_active:
            patient = uow.mpi.get_patient(record.patient_id)
            seen: set[str] = set()
            while patient is not None and patient.merged_into and patient.id not in seen:
                seen.add(patient.id)
                patient = uow.mpi.get_patient(patient.merged_into)
            return patient
    return None


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Membership's refusals as the engine's errors (the class decides 4xx, reply, ACK)."""
    try:
        yield
    except merr.TransitionRefused as exc:
        raise Conflict(exc.reason, "membership_status") from exc
    except merr.PolicyViolation as exc:
        raise PolicyRefused(exc.reason, None, exc.problems) from exc
    except merr.EnrollmentRefused as exc:
        raise PolicyRefused(exc.reason, "email") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberServices:
    """What the membership handlers need, injected once at bootstrap."""

    policies: MembershipPolicies
    clock: Clock
    ids: IdSource
    random: RandomSource
    box: SecretBox
    effects: Effects
    #: Checks contact details against the carrier table (text needs a mobile and a carrier
    #: whose gateway still delivers); None checks nothing.
    channels: NotificationRules | None = None
    #: The lockout mechanisms (with a custom one loaded from routing.yaml); None: the policy's
    #: built-in ones.
    lockout: Lockout | None = None


class MemberHandlers:
    """One method per membership command; ``handle`` dispatches by type."""

    def __init__(self, services: MemberServices) -> None:
        self._s = services
        self._table: dict[type, Callable[[Any, UnitOfWork], Outcome]] = {
            EnrollPatient: self.enroll, ActivateMember: self.activate, ManageToken: self.token,
            ChangeMembershipStatus: self.status, UpdatePreferences: self.preferences,
            RequestPasswordReset: self.request_reset, CompletePasswordReset: self.complete_reset,
            UpgradePasswordHash: self.upgrade_hash,
        }
        s = services
        self._table.update(SignInHandlers(SignInServices(
            policies=s.policies, lockout=s.lockout or lockout_for(s.policies.lockout),
            random=s.random, box=s.box, effects=s.effects, now=s.clock.now,
            check_channels=self._check_channels)).table())

    def handle(self, command: MemberCommand, uow: UnitOfWork) -> Outcome:
        with _domain_errors():
            return self._table[type(command)](command, uow)

    def duplicate(self, command: MemberCommand, uow: UnitOfWork) -> Outcome:
        """The answer to a request id seen before: the member as it stands now."""
        member = None
        if isinstance(command, EnrollPatient):
            patient = find_patient(uow, command.authority, command.value)
            member = uow.members.by_patient(patient.id) if patient else None
        elif hasattr(command, "member_id"):
            member = uow.members.get(command.member_id)
        return Outcome("duplicate", detail="already applied; not applied again",
                       member=view_of(member) if member else None)

    def prefetch(self, commands: list[MemberCommand], uow: UnitOfWork) -> None:
        """Load what a group of commands reads, in a few queries rather than a few per command."""
        identifiers = [Identifier(c.value, c.authority) for c in commands if isinstance(c, EnrollPatient)]
        if identifiers:
            uow.mpi.prefetch([], identifiers)
            patients = [r.patient_id for i in identifiers for r in uow.mpi.records_with_identifier(i)]
            uow.members.prefetch_patients(patients)
        activations = [c for c in commands if isinstance(c, ActivateMember)]
        if activations:
            uow.members.prefetch_tokens([token_digest(c.token) for c in activations],
                                        [c.username for c in activations])
            found = (uow.members.by_token(token_digest(c.token)) for c in activations)
            uow.mpi.prefetch_patients(m.patient_id for m in found if m is not None)

    # -- enrollment ---------------------------------------------------------------------------

    def enroll(self, command: EnrollPatient, uow: UnitOfWork) -> Outcome:
        s, now = self._s, self._s.clock.now()
        patient = find_patient(uow, command.authority, command.value)
        if patient is None:
            raise NotFound(f"no patient in the MPI with identifier {command.authority}|{command.value}",
                           "identifier")
        existing = uow.members.by_patient(patient.id)
        try:
            refuse_duplicate(existing)
        except merr.AlreadyEnrolled as exc:
            raise AlreadyMember(exc.reason, view_of(existing) if existing else None) from exc
        supplied = command.preferences
        decision = choose_email(command.mode, s.policies, supplied.email or "", patient.best)
        preferences = _preferences(Preferences(locale=s.policies.default_locale),
                                   replace(supplied, email=decision.email))
        self._check_channels(preferences, now)
        token = new_token_text(s.random)
        enrolled_by = command.enrolling_user or s.policies.default_enrolling_user
        member = Member.enroll(
            member_id=s.ids.new_id(), patient_id=patient.id, preferences=preferences,
            proxy_only=command.proxy_only, mode=command.mode.value, enrolled_by=enrolled_by,
            token=ActivationToken.issue(token, s.box, now, s.policies.pending_user_expiration),
            passphrase_hash=command.passphrase_hash,
            printed_activation=decision.printed_activation, now=now)
        uow.members.add(member)
        sent = command.passphrase if s.policies.passphrase.send_with_token else ""
        s.effects.apply(member, uow, actor=command.actor, correlation_id=command.origin.control_id,
                        secrets=Secrets(token=token, passphrase=sent or ""))
        return Outcome("applied", (patient.id,), member=view_of(member))

    def _check_channels(self, preferences: Preferences, now: Any) -> None:
        """Text messages need a usable mobile number and carrier (the notifications' table)."""
        if self._s.channels is None or not preferences.communication.value.endswith("text"):
            return
        problems = self._s.channels.validate_channels(
            preferences.communication.value, preferences.email or None, preferences.mobile or None,
            preferences.carrier or None, today=now.date())
        if problems:
            raise merr.PolicyViolation("; ".join(problems), tuple(problems))

    # -- activation ---------------------------------------------------------------------------

    def activate(self, command: ActivateMember, uow: UnitOfWork) -> Outcome:
        s, now = self._s, self._s.clock.now()
        member = uow.members.by_token(token_digest(command.token))
        if member is None:
            uow.audit.add(AuditEntry(actor="member:unknown", action="member.activate",
                                     outcome="refused", reason="no member holds this activation token",
                                     detail={"request": command.origin.control_id[:200]}, at=now))
            return Outcome("applied", detail="refused", member=MemberView(
                member_id="", patient_id="", enrollment_status="", membership_status="",
                status_since=now, refused="no member holds this activation token"))
        refusal = member.activation_refusal(token=command.token, now=now) or self._check(command, member, uow)
        if refusal is not None:
            locked = member.token is not None and member.token.locked(now)
            member.refuse_activation(reason=refusal, now=now, throttle=s.policies.activation_throttle,
                                     count=not locked and "expired" not in refusal)
            uow.members.changed(member)
            s.effects.apply(member, uow, actor=_member_actor(member),
                            correlation_id=command.origin.control_id)
            return Outcome("applied", detail="refused", member=view_of(member, refused=refusal))
        holder = uow.members.by_username(command.username)
        if holder is not None and holder.id != member.id:
            raise merr.PolicyViolation("this username is taken: choose another")
        patient = uow.mpi.get_patient(member.patient_id)
        age = age_on(patient.best.birth_date, now) if patient else None
        minimum = s.policies.minimum_age
        allowed = _allowed(command.preferences, s.policies.activation_preferences)
        member.activate(token=command.token, username=command.username,
                        password_hash=command.password_hash,
                        preferences=_preferences(member.preferences, allowed),
                        minor=minimum is not None and age is not None and age < minimum, now=now)
        uow.members.changed(member)
        s.effects.apply(member, uow, actor=_member_actor(member),
                        correlation_id=command.origin.control_id)
        return Outcome("applied", (member.patient_id,), member=view_of(member))

    def _check(self, command: ActivateMember, member: Member, uow: UnitOfWork) -> str | None:
        """Passphrase and required fields; None when both hold."""
        stored = member.passphrase_hash
        if stored is not None and (command.passphrase_checked_against != stored
                                   or not command.passphrase_ok):
            return "the temporary passphrase does not match"
        patient = uow.mpi.get_patient(member.patient_id)
        if patient is None:
            return "the member's MPI patient is missing"
        return fields_match(self._s.policies.required_fields, command.fields, patient.best)

    # -- Workbench: tokens, statuses, preferences, password reset ------------------------------

    def _member(self, uow: UnitOfWork, member_id: str) -> Member:
        member = uow.members.get(member_id)
        if member is None:
            raise NotFound(f"no member {member_id}", "member_id")
        return member

    def _done(self, member: Member, uow: UnitOfWork, actor: Actor, command: Any,
              secrets: Secrets | None = None) -> Outcome:
        uow.members.changed(member)
        self._s.effects.apply(member, uow, actor=actor, correlation_id=command.origin.control_id,
                              secrets=secrets or Secrets())
        return Outcome("applied", (member.patient_id,), member=view_of(member))

    def token(self, command: ManageToken, uow: UnitOfWork) -> Outcome:
        s, now = self._s, self._s.clock.now()
        member = self._member(uow, command.member_id)
        actor, maximum = command.actor.id, s.policies.max_expiration_reset_window
        if command.action == "resend":
            member.resend_token(now=now, actor=actor)
            return self._done(member, uow, command.actor, command)
        if command.action == "renew":
            member.renew_token(hours=command.hours, reason=command.reason, maximum=maximum, now=now,
                               actor=actor)
            return self._done(member, uow, command.actor, command)
        text = new_token_text(s.random)
        member.regenerate_token(new_token=ActivationToken.issue(text, s.box, now, maximum),
                                hours=command.hours, reason=command.reason, maximum=maximum,
                                notify=command.notify, now=now, actor=actor)
        return self._done(member, uow, command.actor, command, Secrets(token=text))

    def status(self, command: ChangeMembershipStatus, uow: UnitOfWork) -> Outcome:
        member = self._member(uow, command.member_id)
        change = member.deactivate if command.action == "deactivate" else member.reactivate
        change(reason=command.reason, now=self._s.clock.now(), actor=command.actor.id)
        return self._done(member, uow, command.actor, command)

    def preferences(self, command: UpdatePreferences, uow: UnitOfWork) -> Outcome:
        member = self._member(uow, command.member_id)
        preferences = _preferences(member.preferences, command.preferences)
        self._check_channels(preferences, self._s.clock.now())
        member.update_preferences(preferences=preferences, reason=command.reason,
                                  now=self._s.clock.now(), actor=command.actor.id)
        return self._done(member, uow, command.actor, command)

    def request_reset(self, command: RequestPasswordReset, uow: UnitOfWork) -> Outcome:
        s, now = self._s, self._s.clock.now()
        member = self._member(uow, command.member_id)
        text = new_token_text(s.random)
        member.request_password_reset(
            reset=ActivationToken.issue(text, s.box, now, s.policies.password_reset_expiration),
            now=now, actor=command.actor.id, reason=command.reason)
        return self._done(member, uow, command.actor, command, Secrets(reset_token=text))

    def complete_reset(self, command: CompletePasswordReset, uow: UnitOfWork) -> Outcome:
        now = self._s.clock.now()
        member = uow.members.by_reset_token(token_digest(command.token))
        refusal = member.reset_refusal(token=command.token, now=now) if member else "unknown reset token"
        if member is None or refusal is not None:
            raise InvalidMessage("the password reset link is not valid: ask for a new one", "token")
        if command.history_checked_against != member.password_history[:len(command.history_checked_against)]:
            raise Conflict("the password changed meanwhile: try again", "password")
        if command.reused:
            history = self._s.policies.password.history
            raise merr.PolicyViolation(f"the password must not be one of your last {history} passwords")
        member.complete_password_reset(token=command.token, password_hash=command.password_hash,
                                       history=self._s.policies.password.history, now=now)
        return self._done(member, uow, _member_actor(member), command)

    def upgrade_hash(self, command: UpgradePasswordHash, uow: UnitOfWork) -> Outcome:
        member = self._member(uow, command.member_id)
        if member.upgrade_password_hash(expected=command.expected, new_hash=command.new_hash,
                                        now=self._s.clock.now()):
            return self._done(member, uow, _member_actor(member), command)
        return Outcome("applied", detail="password changed meanwhile", member=view_of(member))


def _member_actor(member: Member) -> Actor:
    return Actor(type="member", id=member.id)


def _allowed(given: PreferenceInput, allowed: frozenset[str]) -> PreferenceInput:
    """Only the preferences the policy lets a member set at activation."""
    return PreferenceInput(**{name: getattr(given, name) for name in
                              ("email", "mobile", "carrier", "communication", "locale")
                              if name in allowed})


def _preferences(current: Preferences, given: PreferenceInput) -> Preferences:
    return given.applied_to(current)
