"""The audit log: who did what to whom, when, why, and how it ended. Append-only.

There are two ways in, because some audited actions commit together with a change and some
are failures whose transaction is rolled back:

- ``UnitOfWork.audit`` (an ``AuditTrail``) writes entries in the same commit as the change;
- ``AuditLog.append`` writes one entry in a short transaction of its own (refusals,
  failures, reads, operator commands).

``AuditLog.query`` reads them back, newest first. No code path updates or deletes an entry;
on PostgreSQL and SQLite a trigger refuses UPDATE and DELETE on the table as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from engine.domain.durations import parse_duration
from engine.limits import (
    AUDIT_ACTION_CHARS,
    AUDIT_ACTOR_CHARS,
    AUDIT_OUTCOME_CHARS,
    AUDIT_REASON_CHARS,
)
from mpi.limits import RECORD_ID_CHARS

__all__ = ["AuditEntry", "AuditLog", "AuditRecord", "AuditTrail", "matches_filter", "parse_since"]

#: Column widths of the ``audit_log`` table, checked when an entry is made.
_LIMITS = {"actor": AUDIT_ACTOR_CHARS, "action": AUDIT_ACTION_CHARS,
           "outcome": AUDIT_OUTCOME_CHARS, "reason": AUDIT_REASON_CHARS,
           "member_id": RECORD_ID_CHARS, "patient_id": RECORD_ID_CHARS}


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One audited action.

    ``actor`` names who acted: ``staff:<name>``, ``cli:<OS login>``, ``member:<id>``,
    ``system:<component>``. ``action`` is a dotted code (``staff.add``, ``member.deactivate``);
    ``outcome`` is ``success``, ``refused`` or ``failed``; ``reason`` is the one the actor
    gave, or why it was refused. ``at`` is filled from the injected clock when None.

    Never put patient data in ``detail`` (no names, birth dates, addresses, phones, e-mail
    addresses, SSNs or MRN values): ids and codes only. The audit log outlives the records
    it points at, and is read by more people than the MPI is.
    """

    actor: str
    action: str
    outcome: str
    reason: str = ""
    member_id: str | None = None
    patient_id: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("actor", "action", "outcome"):
            if not getattr(self, name):
                raise ValueError(f"an audit entry needs its {name}")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"audit entry {name} is longer than {limit} characters")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.detail.items()):
            raise ValueError("audit entry detail maps strings to strings")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("audit entry times are timezone-aware")
        # Frozen means frozen: a caller keeping the dict it passed cannot change the entry.
        object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))


@dataclass(frozen=True)
class AuditRecord:
    """A stored entry with its id (increasing in the order entries were written)."""

    id: int
    entry: AuditEntry

    @property
    def at(self) -> datetime:
        assert self.entry.at is not None, "stored entries always carry their time"
        return self.entry.at

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values."""
        e = self.entry
        return {"id": self.id, "at": self.at.isoformat(), "actor": e.actor, "action": e.action,
                "outcome": e.outcome, "reason": e.reason, "member_id": e.member_id,
                "patient_id": e.patient_id, "detail": dict(e.detail)}


class AuditTrail(ABC):
    """Port: audit entries written in the same commit as a unit of work's change."""

    @abstractmethod
    def add(self, entry: AuditEntry) -> None:
        """Queue ``entry``; it is stored with the unit of work's commit (or not at all)."""


class AuditLog(ABC):
    """Port: the audit log outside any unit of work."""

    @abstractmethod
    def append(self, entry: AuditEntry) -> None:
        """Store ``entry`` now, in a transaction of its own."""

    @abstractmethod
    def query(self, *, member_id: str | None = None, actor: str | None = None,
              action: str | None = None, since: datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        """Entries matching every filter given, newest first, at most ``limit``.

        ``actor`` and ``action`` match exactly, or by prefix when they end with ``*``
        (``staff.*``, ``cli:*``); ``since`` keeps entries at or after that instant.
        """


def matches_filter(value: str, wanted: str) -> bool:
    """The ``actor``/``action`` filter rule of ``AuditLog.query``, for in-memory stores."""
    return value.startswith(wanted[:-1]) if wanted.endswith("*") else value == wanted


def parse_since(text: str, now: datetime) -> datetime:
    """``since`` as operators write it: a duration back from ``now`` (``1h``, ``7d``) or an
    ISO 8601 time (UTC when it names no offset). Raises ``ValueError`` saying what it expects."""
    try:
        return now - parse_duration(text)
    except OverflowError:
        raise ValueError(f"since: {text!r} reaches back before the year 1") from None
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"since: {text!r} is neither a duration (30m, 1h, 7d) nor an ISO time "
                         "(2026-01-31T08:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
