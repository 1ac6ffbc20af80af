"""Domain events: small frozen facts, past tense, no HL7 or FHIR types inside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

__all__ = ["DomainEvent", "MpiRecordChanged"]


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
