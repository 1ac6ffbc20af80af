"""What a member's domain events become, in the same unit of work: status events in the
outbox (when ``events.publish`` selects them), notifications to the member, audit rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.audit import AuditEntry
from engine.domain.clock import IdSource
from engine.domain.events import (
    MemberActivatedEvent,
    MemberCredentialEvent,
    MemberDeactivatedEvent,
    MemberEnrolledEvent,
    MemberLockedEvent,
    MemberPasswordChangedEvent,
    MemberReactivatedEvent,
    MemberStatusChanged,
    MemberUnlockedEvent,
)
from engine.member_commands import Actor
from engine.notifications import Channel, Notification
from engine.uow import OutboxMessage, UnitOfWork
from membership import events as ev
from membership.model import Member
from membership.tokens import SecretBox

__all__ = ["Effects", "Secrets", "audit_member_event"]

_STATUS_EVENTS: dict[type[ev.MemberEvent], type[MemberStatusChanged]] = {
    ev.MemberEnrolled: MemberEnrolledEvent, ev.MemberActivated: MemberActivatedEvent,
    ev.MemberDeactivated: MemberDeactivatedEvent, ev.MemberReactivated: MemberReactivatedEvent,
}
_CREDENTIAL_EVENTS: dict[type[ev.MemberEvent], type[MemberCredentialEvent]] = {
    ev.PasswordChanged: MemberPasswordChangedEvent, ev.MemberLocked: MemberLockedEvent,
    ev.MemberUnlocked: MemberUnlockedEvent,
}
#: Notification kinds (``outbound.notify.kinds`` names their templates and context values).
ACTIVATION_TOKEN = "activation_token"  # noqa: S105 - a kind, not a secret
PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind, not a secret
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a kind, not a secret
_NOTIFIED: dict[type[ev.MemberEvent], str] = {
    ev.MemberEnrolled: ACTIVATION_TOKEN,
    ev.TokenResent: ACTIVATION_TOKEN,
    ev.TokenRegenerated: ACTIVATION_TOKEN,
    ev.MemberActivated: "registration_complete",
    ev.MemberDeactivated: "deactivated",
    ev.MemberReactivated: "reactivated",
    ev.PasswordResetRequested: PASSWORD_RESET,
    ev.PasswordChanged: PASSWORD_CHANGED,
    ev.OtpIssued: "otp_code",
    ev.ContactChanged: "profile_contact_changed",
}
_CHANNELS: tuple[Channel, ...] = ("email", "sms")
Audit = Callable[[UnitOfWork, ev.MemberEvent, Actor, str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Secrets:
    """Secret values a handler has in clear for this change's notifications."""

    token: str = ""
    passphrase: str = ""
    reset_token: str = ""
    otp_code: str = ""


class Effects:
    """Turns the events a member recorded into outbox rows, notifications and audit rows."""

    def __init__(self, *, ids: IdSource, box: SecretBox, publish: frozenset[str],
                 notify_password_change: bool, audit: Audit | None = None) -> None:
        self._ids = ids
        self._box = box
        self._publish = publish
        self._notify_password_change = notify_password_change
        self._audit = audit

    def apply(self, member: Member, uow: UnitOfWork, *, actor: Actor, correlation_id: str,
              secrets: Secrets | None = None) -> None:
        """Write the effects of every event ``member`` recorded, then forget the events."""
        secrets = secrets or Secrets()
        for event in member.events:
            self._status_event(member, event, uow, actor, correlation_id)
            self._credential_event(member, event, uow, actor, correlation_id)
            self._notify(member, event, uow, secrets)
            if self._audit is not None:
                self._audit(uow, event, actor, correlation_id)
        member.events.clear()

    def _status_event(self, member: Member, event: ev.MemberEvent, uow: UnitOfWork, actor: Actor,
                      correlation_id: str) -> None:
        kind = _STATUS_EVENTS.get(type(event))
        if kind is None or kind.routing_key not in self._publish:
            return
        patient = uow.mpi.get_patient(member.patient_id)
        identifiers = tuple(i.to_dict() for i in patient.best.identifiers) if patient else ()
        extra: dict[str, Any] = {}
        if isinstance(event, ev.MemberEnrolled):
            extra["enrollment_method"] = event.mode
        fact = kind(subject=member.id, occurred_at=event.occurred_at, correlation_id=correlation_id,
                    patient_id=member.patient_id, identifiers=identifiers,
                    old_status=_status(event.old_status), new_status=_status(event.new_status) or "",
                    enrollment_status=member.enrollment_status.value, reason=event.reason or None,
                    actor_type=actor.type, actor_id=actor.id, **extra)
        uow.outbox.add(OutboxMessage(  # the store numbers the member's events at commit
            event_id=self._ids.new_uuid(), routing_key=fact.routing_key, subject=member.id,
            correlation_id=correlation_id, occurred_at=event.occurred_at, data=fact.data()))

    def _credential_event(self, member: Member, event: ev.MemberEvent, uow: UnitOfWork,
                          actor: Actor, correlation_id: str) -> None:
        kind = _CREDENTIAL_EVENTS.get(type(event))
        if kind is None or kind.routing_key not in self._publish:
            return
        patient = uow.mpi.get_patient(member.patient_id)
        extra: dict[str, Any] = {}
        if isinstance(event, ev.MemberLocked):
            extra = {"locked_until": event.locked_until, "mechanism": event.mechanism}
        who = actor if event.actor == actor.id else _actor_of(event.actor, member)
        fact = kind(subject=member.id, occurred_at=event.occurred_at, correlation_id=correlation_id,
                    patient_id=member.patient_id,
                    identifiers=tuple(i.to_dict() for i in patient.best.identifiers) if patient else (),
                    membership_status=member.membership_status.value, reason=event.reason or None,
                    actor_type=who.type, actor_id=who.id, **extra)
        uow.outbox.add(OutboxMessage(
            event_id=self._ids.new_uuid(), routing_key=fact.routing_key, subject=member.id,
            correlation_id=correlation_id, occurred_at=event.occurred_at, data=fact.data()))

    def _notify(self, member: Member, event: ev.MemberEvent, uow: UnitOfWork,
                secrets: Secrets) -> None:
        kind = _NOTIFIED.get(type(event))
        if kind is None or (isinstance(event, ev.TokenRegenerated | ev.PasswordResetRequested)
                            and not event.notify):
            return
        if kind == PASSWORD_CHANGED and not self._notify_password_change:
            return
        context, secret_names = self._context(member, event, kind, secrets)
        for channel, recipient, carrier in _recipients(member, event):
            uow.notifications.add(Notification(
                id=self._ids.new_uuid(), kind=kind, channel=channel, recipient=recipient,
                carrier=carrier, locale=member.preferences.locale, member_id=member.id,
                context=context, created_at=event.occurred_at, secrets=secret_names))

    def _context(self, member: Member, event: ev.MemberEvent, kind: str,
                 secrets: Secrets) -> tuple[dict[str, str], frozenset[str]]:
        """The kind's values (all strings): ``outbound.notify.kinds`` lists them."""
        context = {"occurred_at": _iso(event.occurred_at)}
        names: set[str] = set()
        if kind == ACTIVATION_TOKEN and member.token is not None:
            context["token"] = secrets.token or self._box.open(member.token.sealed)
            context["expires_at"] = _iso(member.token.expires_at)
            names.add("token")
            if secrets.passphrase:
                context["passphrase"] = secrets.passphrase
                names.add("passphrase")
        elif kind == PASSWORD_RESET and member.reset is not None:
            context["reset_token"] = secrets.reset_token or self._box.open(member.reset.sealed)
            context["expires_at"] = _iso(member.reset.expires_at)
            names.add("reset_token")
        elif kind == "registration_complete":
            context["username"] = member.username or ""
        elif isinstance(event, ev.OtpIssued) and secrets.otp_code:
            context["code"] = secrets.otp_code
            context["valid_minutes"] = str(max(1, round(
                (event.expires_at - event.occurred_at).total_seconds() / 60)))
            names.add("code")
        elif isinstance(event, ev.ContactChanged):
            context["changed"] = "email" if event.channel == "email" else "mobile"
        return context, frozenset(names)


def _recipients(member: Member, event: ev.MemberEvent) -> list[tuple[Channel, str, str | None]]:
    """Where a notification goes: the old address for a contact change, else every channel
    the member's preferences choose."""
    if isinstance(event, ev.ContactChanged):
        channel: Channel = "email" if event.channel == "email" else "sms"
        return [(channel, event.old_recipient, (event.old_carrier or None) if channel == "sms" else None)]
    prefs, found = member.preferences, []
    for channel in _CHANNELS:
        wanted = prefs.wants_email if channel == "email" else prefs.wants_text
        recipient = prefs.email if channel == "email" else prefs.mobile
        if wanted and recipient:
            found.append((channel, recipient, (prefs.carrier or None) if channel == "sms" else None))
    return found


def _actor_of(actor_id: str, member: Member) -> Actor:
    """The actor an event names (``system:lockout``, the member's id, a staff id)."""
    if actor_id == member.id:
        return Actor(type="member", id=actor_id)
    if actor_id.startswith("system:"):
        return Actor(type="system", id=actor_id.removeprefix("system:"))
    return Actor(type="staff", id=actor_id)


def audit_member_event(uow: UnitOfWork, event: ev.MemberEvent, actor: Actor,
                       correlation_id: str) -> None:
    """One audit entry per member event, in the same commit (ids and codes only, no PHI)."""
    refused = isinstance(event, ev.ActivationRefused | ev.SignInRefused | ev.OtpRefused)
    detail = {"request": correlation_id[:200]}
    if event.old_status is not None or event.new_status is not None:
        detail["status"] = f"{event.old_status or '-'} -> {event.new_status or '-'}"
    if isinstance(event, ev.TokenRenewed | ev.TokenRegenerated | ev.PasswordResetRequested):
        detail["expires_at"] = event.expires_at.isoformat()
    if isinstance(event, ev.PreferencesChanged):
        detail["fields"] = ",".join(event.fields)
    if isinstance(event, ev.ContactChanged):
        detail["changed"] = event.channel  # never the addresses (PHI)
    if isinstance(event, ev.MemberLocked):
        detail.update(mechanism=event.mechanism, locked_until=event.locked_until.isoformat()
                      if event.locked_until else "indefinite")
    if isinstance(event, ev.MemberEnrolled):
        detail.update(mode=event.mode, printed_activation=str(event.printed_activation).lower())
    uow.audit.add(AuditEntry(
        actor=f"{actor.type}:{actor.name or actor.id}"[:200], action=event.action,
        outcome="refused" if refused else "success", reason=(event.reason or "")[:2000],
        member_id=event.member_id, patient_id=event.patient_id, detail=detail,
        at=event.occurred_at))


def _status(value: object) -> str | None:
    return None if value is None else str(value)


def _iso(stamp: datetime) -> str:
    return stamp.isoformat()
