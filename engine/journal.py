"""The message journal: every inbound message, what it was answered and what it changed.

One entry per message received (HL7 v2 over MLLP or AMQP, FHIR writes): sender, control id,
time received, outcome (the HL7 acknowledgement code, or the HTTP status), the error code
and location of a refusal, the effects (ids only: records, patients, merges, events) and,
as ``routing.yaml``'s ``journal.payloads`` says, the message and its answer kept as
received, sealed, or left out. Entries are found by control id, time and outcome
(``portalbridge messages``, ``GET /workbench/messages``) and deleted after the retention.

Where an entry is written (``engine.committer`` does both):

- a message whose command is applied is journaled in the same unit of work as its effects:
  the entry exists exactly when the effects do, and costs no commit of its own;
- a message that is answered without a commit (refused before the database, or failed)
  is *deferred*: queued in memory and written with the next group commit, or alone when no
  group follows within a few milliseconds. Its answer is never held up by the journal.

The journal never turns a good message into a failure: a deferred entry that cannot be
written is retried and, past ``MAX_DEFERRED`` waiting entries, dropped and counted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.commands import Outcome
from mpi.index import PatientChange

__all__ = ["JournalEntry", "JournalQuery", "JournalRecord", "JournalStore", "JournalTrail",
           "PayloadForm", "effects_of", "is_refusal"]

PayloadForm = Literal["encrypt", "keep", "omit"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One inbound message as journaled. ``payload`` and ``response`` are the bytes as
    received and as answered (several HL7 acknowledgements are separated by a newline);
    the store keeps them as ``journal.payloads`` says."""

    channel: str  # "mllp", "amqp", "fhir"
    sender: str  # MSH-3^MSH-4, or the FHIR client
    control_id: str  # MSH-10, or the FHIR request id
    message_type: str  # "ADT^A08", "POST Patient", ...
    received_at: datetime
    outcome: str  # AA, AE, AR; or the HTTP status ("201", "422")
    error_code: str = ""  # HL7 table 0357 code, or the FHIR issue code
    error_location: str = ""  # "PID-7", "Patient.birthDate", ...
    effects: dict[str, Any] = field(default_factory=dict)
    payload: bytes | None = None
    response: bytes | None = None
    reprocess_of: int | None = None  # the journal row this one re-ran


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """A stored entry with its row id; ``form`` is how its payload was stored."""

    id: int
    entry: JournalEntry
    form: PayloadForm

    def summary(self) -> dict[str, Any]:
        """Everything but the payload and the response, as JSON-ready values."""
        e = self.entry
        return {"id": self.id, "received_at": e.received_at.isoformat(), "channel": e.channel,
                "sender": e.sender, "control_id": e.control_id, "message_type": e.message_type,
                "outcome": e.outcome, "error_code": e.error_code,
                "error_location": e.error_location, "effects": e.effects,
                "payloads": self.form, "reprocess_of": e.reprocess_of}


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalQuery:
    """Filters of ``JournalStore.query``; each given one must hold.

    ``outcome`` and ``sender`` match exactly, or by prefix when they end with ``*``
    (``4*`` for every HTTP client error).
    """

    since: datetime | None = None
    outcome: str | None = None
    channel: str | None = None
    sender: str | None = None
    control_id: str | None = None
    reprocess_of: int | None = None
    limit: int = 100


class JournalTrail(ABC):
    """Port: journal entries written in the same commit as a unit of work's change."""

    @abstractmethod
    def add(self, entries: list[JournalEntry]) -> None:
        """Queue ``entries``; they are stored with the unit of work's commit (or not at all)."""


class JournalStore(ABC):
    """Port: the stored journal, outside any unit of work. Payloads come back opened."""

    @abstractmethod
    def query(self, query: JournalQuery, *, payloads: bool = False) -> list[JournalRecord]:
        """Entries matching ``query``, newest first; payloads opened only when asked."""

    @abstractmethod
    def get(self, row_id: int) -> JournalRecord | None:
        """One entry with its payload and response opened."""

    @abstractmethod
    def purge(self, before: datetime, *, batch: int = 5000) -> int:
        """Delete entries received before ``before``, in short transactions; how many."""


def is_refusal(outcome: str) -> bool:
    """AR, or an HTTP client error: the sender must change the message before resending."""
    return outcome == "AR" or (len(outcome) == 3 and outcome.startswith("4"))


def effects_of(outcome: Outcome) -> dict[str, Any]:
    """What applying a command did, as ids and field names (never values: no patient data)."""
    effects: dict[str, Any] = {"status": outcome.status}
    if outcome.events:
        effects["events"] = outcome.events
    patients = [_patient_effect(change) for change in outcome.changes]
    if patients:
        effects["patients"] = patients
    if outcome.resource is not None:
        state = outcome.resource
        effects["record"] = {"id": state.record_id, "version": state.version,
                             "created": state.created, "changed": state.changed}
    if outcome.parts:
        effects["parts"] = [effects_of(part) for part in outcome.parts]
    return effects


def _patient_effect(change: PatientChange) -> dict[str, Any]:
    found: dict[str, Any] = {"id": change.patient_id}
    if change.created:
        found["created"] = True
    if change.changed:
        found["fields"] = sorted(change.changed)
    if change.merged_into:
        found["merged_into"] = change.merged_into
    if change.merged_from:
        found["merged_from"] = list(change.merged_from)
    return found
