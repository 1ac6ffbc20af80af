"""Canonical commands: what any input (HL7 v2, FHIR, queue, HTTP) becomes before the core.

The core never sees HL7 or FHIR types: adapters translate into these small frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mpi.index import PatientChange

from mpi.model import DemographicsUpdate, RecordKey

__all__ = [
    "ChangePatientIdentifier",
    "Command",
    "IdentifierChange",
    "MergePatientRecords",
    "MessageOrigin",
    "Outcome",
    "RecordMerge",
    "UpsertPatientRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageOrigin:
    """Where a command came from; (sender, control_id) makes it idempotent."""

    channel: str  # "hl7", "fhir", ...
    sender: str  # e.g. "ADTApp^GHH" (MSH-3^MSH-4) or an authenticated FHIR client
    control_id: str  # MSH-10, or a request id
    message_type: str  # e.g. "ADT^A08", "Patient.create"
    facility: str  # the facility code from routing.yaml


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertPatientRecord:
    """Create or update one facility's source record of a patient."""

    origin: MessageOrigin
    key: RecordKey
    update: DemographicsUpdate


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMerge:
    """Merge ``prior`` into ``survivor`` (both of the same facility)."""

    survivor: RecordKey
    prior: RecordKey
    update: DemographicsUpdate


@dataclass(frozen=True, slots=True, kw_only=True)
class MergePatientRecords:
    """One or more merges sent together (every PID/MRG group of an A40)."""

    origin: MessageOrigin
    merges: tuple[RecordMerge, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifierChange:
    """Re-key a record from ``old`` to ``new`` (A47)."""

    old: RecordKey
    new: RecordKey
    update: DemographicsUpdate


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePatientIdentifier:
    """One or more identifier changes sent together."""

    origin: MessageOrigin
    changes: tuple[IdentifierChange, ...]


Command = UpsertPatientRecord | MergePatientRecords | ChangePatientIdentifier


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a command did. ``duplicate`` means it had been committed before."""

    status: Literal["applied", "duplicate"]
    patient_ids: tuple[str, ...] = ()
    events: int = 0
    detail: str = ""
    changes: tuple[PatientChange, ...] = ()
