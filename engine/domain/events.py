"""Domain events: small frozen facts, past tense, no HL7 or FHIR types inside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "CREDENTIAL_EVENTS",
    "MEMBER_EVENTS",
    "DomainEvent",
    "MemberActivatedEvent",
    "MemberCredentialEvent",
    "MemberDeactivatedEvent",
    "MemberEnrolledEvent",
    "MemberLockedEvent",
    "MemberPasswordChangedEvent",
    "MemberReactivatedEvent",
    "MemberStatusChanged",
    "MemberUnlockedEvent",
    "MpiRecordChanged",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Something that happened and that downstream systems may be told about."""

    routing_key: ClassVar[str] = ""
    subject: str
    occurred_at: datetime
    correlation_id: str = ""

    def data(self) -> dict[str, Any]:
        """The event's ``data`` member, JSON-able."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class MpiRecordChanged(DomainEvent):
    """A patient's best demographics changed (or the patient was created or merged)."""

    routing_key: ClassVar[str] = "mpi.changed"
    identifiers: tuple[dict[str, str], ...]
    changes: dict[str, tuple[Any, Any]]
    winner_facility: str
    winner_tier: int | None
    created: bool
    merged_into: str | None
    merged_from: tuple[str, ...]
    source: dict[str, str]

    def data(self) -> dict[str, Any]:
        return {
            "patient_id": self.subject,
            "identifiers": list(self.identifiers),
            "changes": {name: {"old": old, "new": new} for name, (old, new) in self.changes.items()},
            "winner": {"facility": self.winner_facility, "tier": self.winner_tier},
            "created": self.created,
            "merged_into": self.merged_into,
            "merged_from": list(self.merged_from),
            "source": dict(self.source),
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberStatusChanged(DomainEvent):
    """A member's membership status changed; subclasses name the change (the routing key).

    ``OLD``/``NEW`` list the statuses each kind of change can come from and go to; the JSON
    Schemas in ``engine/schemas`` are generated from them (``engine.event_schemas``).
    """

    OLD: ClassVar[tuple[str | None, ...]] = ()
    NEW: ClassVar[tuple[str, ...]] = ()
    DESCRIPTION: ClassVar[str] = ""
    patient_id: str
    identifiers: tuple[dict[str, str], ...]
    old_status: str | None
    new_status: str
    enrollment_status: str
    reason: str | None
    actor_type: str  # system, interface, staff, member
    actor_id: str

    def data(self) -> dict[str, Any]:
        return {
            "member_id": self.subject, "patient_id": self.patient_id,
            "identifiers": list(self.identifiers), "old_status": self.old_status,
            "new_status": self.new_status, "enrollment_status": self.enrollment_status,
            "reason": self.reason or None, "actor": {"type": self.actor_type, "id": self.actor_id},
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEnrolledEvent(MemberStatusChanged):
    routing_key: ClassVar[str] = "member.enrolled"
    OLD: ClassVar[tuple[str | None, ...]] = (None,)
    NEW: ClassVar[tuple[str, ...]] = ("pending",)
    DESCRIPTION: ClassVar[str] = ("A prospective member was enrolled (automated or point-of-care): an "
                                  "activation token was issued and the account waits for activation.")
    enrollment_method: str

    def data(self) -> dict[str, Any]:
        return {**MemberStatusChanged.data(self), "enrollment_method": self.enrollment_method}


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberActivatedEvent(MemberStatusChanged):
    routing_key: ClassVar[str] = "member.activated"
    OLD: ClassVar[tuple[str | None, ...]] = ("pending",)
    NEW: ClassVar[tuple[str, ...]] = ("active", "inactive/minor")
    DESCRIPTION: ClassVar[str] = ("A pending member chose a username and password: the account is "
                                  "active (inactive/minor below the minimum age).")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberDeactivatedEvent(MemberStatusChanged):
    routing_key: ClassVar[str] = "member.deactivated"
    OLD: ClassVar[tuple[str | None, ...]] = ("active", "inactive/minor")
    NEW: ClassVar[tuple[str, ...]] = ("inactive",)
    DESCRIPTION: ClassVar[str] = "A member's account was deactivated, with a reason."


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberReactivatedEvent(MemberStatusChanged):
    routing_key: ClassVar[str] = "member.reactivated"
    OLD: ClassVar[tuple[str | None, ...]] = ("inactive",)
    NEW: ClassVar[tuple[str, ...]] = ("active",)
    DESCRIPTION: ClassVar[str] = "An inactive member's account was reactivated, with a reason."


MEMBER_EVENTS: tuple[type[MemberStatusChanged], ...] = (
    MemberEnrolledEvent, MemberActivatedEvent, MemberDeactivatedEvent, MemberReactivatedEvent)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberCredentialEvent(DomainEvent):
    """Something happened to a member's credentials (no status change); subclasses name it.
    Off unless ``events.publish`` selects them. No secret is ever in ``data``."""

    DESCRIPTION: ClassVar[str] = ""
    patient_id: str
    identifiers: tuple[dict[str, str], ...]
    membership_status: str
    reason: str | None
    actor_type: str  # system, staff, member
    actor_id: str

    def data(self) -> dict[str, Any]:
        return {
            "member_id": self.subject, "patient_id": self.patient_id,
            "identifiers": list(self.identifiers), "membership_status": self.membership_status,
            "reason": self.reason or None, "actor": {"type": self.actor_type, "id": self.actor_id},
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberPasswordChangedEvent(MemberCredentialEvent):
    routing_key: ClassVar[str] = "member.password_changed"
    DESCRIPTION: ClassVar[str] = ("A member's password was changed (a completed password reset, "
                                  "by the member or after a staff-initiated reset).")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLockedEvent(MemberCredentialEvent):
    routing_key: ClassVar[str] = "member.locked"
    DESCRIPTION: ClassVar[str] = ("Failed sign-ins locked a member's account, until locked_until "
                                  "(null: indefinitely, until a password reset).")
    locked_until: datetime | None
    mechanism: str

    def data(self) -> dict[str, Any]:
        return {**MemberCredentialEvent.data(self), "mechanism": self.mechanism,
                "locked_until": self.locked_until.isoformat() if self.locked_until else None}


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberUnlockedEvent(MemberCredentialEvent):
    routing_key: ClassVar[str] = "member.unlocked"
    DESCRIPTION: ClassVar[str] = ("A member's lock ended: its time was over, a password reset or "
                                  "a Member Account Manager cleared it (reason says which).")


CREDENTIAL_EVENTS: tuple[type[MemberCredentialEvent], ...] = (
    MemberPasswordChangedEvent, MemberLockedEvent, MemberUnlockedEvent)
