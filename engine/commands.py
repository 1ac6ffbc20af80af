"""Canonical commands: what any input (HL7 v2, FHIR, queue, HTTP) becomes before the core.

The core never sees HL7 or FHIR types: adapters translate into these small frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine.membership_rules import EnrollRule
from mpi.index import PatientChange
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey

__all__ = [
    "ApplyAtomically",
    "ChangePatientIdentifier",
    "Command",
    "IdentifierChange",
    "MergePatientRecords",
    "MessageOrigin",
    "Outcome",
    "PatientCommand",
    "RecordLink",
    "RecordMerge",
    "ResourceState",
    "SavePatientResource",
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
    enroll: EnrollRule | None = None  # the route's automated enrollment, if it has one


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMerge:
    """Merge ``prior`` into ``survivor`` (both of the same facility).

    ``prior_identifiers``: every identifier the sender gave the non-surviving record (all of
    MRG-1's repetitions); the facility's records under any of them are merged, and when
    there is none they are remembered for the survivor. ``group`` is the merge's position in
    its message (the n-th PID/MRG group), so a refusal can point at it.
    """

    survivor: RecordKey
    prior: RecordKey
    update: DemographicsUpdate
    prior_identifiers: tuple[Identifier, ...] = ()
    group: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class MergePatientRecords:
    """One or more merges sent together (every PID/MRG group of an A40)."""

    origin: MessageOrigin
    merges: tuple[RecordMerge, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifierChange:
    """Re-key a record from ``old`` to ``new`` (A47); ``group`` as in ``RecordMerge``."""

    old: RecordKey
    new: RecordKey
    update: DemographicsUpdate
    group: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePatientIdentifier:
    """One or more identifier changes sent together."""

    origin: MessageOrigin
    changes: tuple[IdentifierChange, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordLink:
    """A resource-level link between two records (FHIR ``Patient.link``)."""

    other_record_id: str
    kind: Literal["replaced-by", "replaces"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SavePatientResource:
    """Create or replace a whole record, as a resource (FHIR create, update, conditional create).

    ``record_id`` None creates; otherwise updates that record or creates it under that id.
    ``if_none_exist``: when one active record carries all these identifiers, it is returned
    unchanged instead of creating; several matches are a failed precondition.
    """

    origin: MessageOrigin
    record_id: str | None
    key: RecordKey
    demographics: Demographics
    expected_version: int | None = None
    if_none_exist: tuple[Identifier, ...] = ()
    links: tuple[RecordLink, ...] = ()
    enroll: EnrollRule | None = None  # automated enrollment when this creates a record


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyAtomically:
    """Several commands that succeed or fail together (a FHIR transaction Bundle)."""

    origin: MessageOrigin
    commands: tuple[Command, ...]




@dataclass(frozen=True, slots=True)
class ResourceState:
    """Where a resource-style write left its record."""

    record_id: str
    version: int
    created: bool
    changed: bool
    #: The record's update time (FHIR ``meta.lastUpdated``), so the answer needs no re-read.
    last_updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a command did. ``duplicate`` means it had been committed before."""

    status: Literal["applied", "duplicate"]
    patient_ids: tuple[str, ...] = ()
    events: int = 0
    detail: str = ""
    changes: tuple[PatientChange, ...] = ()
    resource: ResourceState | None = None
    parts: tuple[Outcome, ...] = ()
    #: Membership commands: the member as the command left it (or found it, for a duplicate).
    member: Any = None


# Membership commands live in their own module (which imports ``MessageOrigin`` from here).
from engine.member_commands import MemberCommand  # noqa: E402

PatientCommand = (UpsertPatientRecord | MergePatientRecords | ChangePatientIdentifier
                  | SavePatientResource | ApplyAtomically)
Command = PatientCommand | MemberCommand
