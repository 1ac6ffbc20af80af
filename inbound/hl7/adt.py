"""ADT events into commands: which trigger does what, read the way its HL7 version defines it.

``upsert_patient`` applies the first PID to the sending facility's record. ``change_identifier``
(A47) moves each group's record from its MRG-1 identifier to its PID-3 one. ``merge_patients``
takes the whole merge family; in each the PID names the surviving record and the MRG the
non-surviving one, which is found by *any* identifier of the MRG field (every repetition):

| trigger | event (versions that define it) | survivor | non-surviving | groups |
| ------- | ------------------------------- | -------- | ------------- | ------ |
| A18 | merge patient information (v2.1-2.6) | PID-3 | MRG-1, else MRG-4 | one |
| A30 | merge person information (v2.2-2.6) | PID-3 | MRG-1, else MRG-4 | one |
| A34 | merge patient, patient ID only (v2.2-2.6) | PID-3 | MRG-1 | one |
| A35 | merge patient, account number only (v2.2-2.6) | no record merge | - | one |
| A36 | merge patient, patient ID and account number (v2.2-2.6) | PID-3 | MRG-1 | one |
| A39 | merge person, patient ID: to v2.6 | PID-2 (PID-3) | MRG-4 (MRG-1) | several |
| A39 | the same from v2.7 (PID-2, MRG-4 withdrawn) | PID-3 | MRG-1 | several |
| A40 | merge patient, patient identifier list (v2.3 on) | PID-3 | MRG-1 | several |

Account numbers (PID-18, MRG-3) are not kept by the index: A35 is applied as an update of
the PID's record and A18/A36 merge the records; the acknowledgement says the account part
changed nothing. A merge message that names no non-surviving record is refused, never
acknowledged while applying nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from engine.commands import (
    ChangePatientIdentifier,
    Command,
    IdentifierChange,
    MergePatientRecords,
    MessageOrigin,
    RecordMerge,
    UpsertPatientRecord,
)
from engine.errors import InvalidMessage, RejectedMessage, in_occurrence
from engine.routing import RouteDecision
from engine.rules import Action
from inbound.hl7.header import Header
from inbound.hl7.limits import check_repetitions
from inbound.hl7.reader import HL7_NULL, Er7Message, Segment
from inbound.hl7.translate import Source, identifiers_in, patient_update, record_key
from mpi.model import DemographicsUpdate, Identifier, RecordKey

__all__ = ["translate"]

_ACCOUNTS_NOT_KEPT = "account numbers (PID-18, MRG-3) are not kept by portalbridge"


@dataclass(frozen=True, slots=True)
class _Reading:
    """How one merge trigger names its records."""

    survivor_field: int  # PID field the surviving record is keyed from (2 falls back to 3)
    prior_fields: tuple[int, ...]  # MRG fields naming the non-surviving record; first filled
    several: bool  # may carry several PID/MRG groups
    accounts: bool  # also merges account numbers


_READINGS = {
    "A18": _Reading(3, (1, 4), several=False, accounts=True),
    "A30": _Reading(3, (1, 4), several=False, accounts=False),
    "A34": _Reading(3, (1,), several=False, accounts=False),
    "A36": _Reading(3, (1,), several=False, accounts=True),
    "A40": _Reading(3, (1,), several=True, accounts=False),
}
_A39_PERSON_LEVEL = _Reading(2, (4, 1), several=True, accounts=False)  # v2.3 to v2.6
_A39_IDENTIFIER_LIST = _Reading(3, (1,), several=True, accounts=False)  # v2.7 on


@dataclass(frozen=True, slots=True)
class _Group:
    """A PID and the MRG that follows it, with their occurrences in the message."""

    number: int
    pid: Segment
    mrg: Segment | None
    mrg_number: int


def translate(message: Er7Message, header: Header,
              decision: RouteDecision) -> tuple[Command | None, str]:
    """The command for a routed message (None for routes that apply nothing), and a note
    for the acknowledgement about what the command cannot do."""
    action = decision.route.action
    origin = MessageOrigin(channel="hl7", sender=header.sender, control_id=header.control_id,
                           message_type=f"{header.message_type}^{header.trigger}",
                           facility=decision.facility.code)
    source = Source.of(decision)
    check_repetitions(message)
    if action is Action.UPSERT_PATIENT:
        return replace(_upsert(message, origin, source), enroll=decision.route.enroll), ""
    if action is Action.MERGE_PATIENTS:
        return _merge(message, header, origin, source)
    if action is Action.CHANGE_IDENTIFIER:
        pairs = enumerate(_pairs(message, source, _READINGS["A40"]), 1)
        changes = tuple(IdentifierChange(old=prior, new=key, update=update, group=number)
                        for number, (key, update, prior, _) in pairs)
        return ChangePatientIdentifier(origin=origin, changes=changes), ""
    return None, ""


def _upsert(message: Er7Message, origin: MessageOrigin, source: Source) -> UpsertPatientRecord:
    pid = message.segment("PID")
    if pid is None:
        raise InvalidMessage("the message has no PID segment", "PID")
    key, update = patient_update(pid, source)
    return UpsertPatientRecord(origin=origin, key=key, update=update)


def _merge(message: Er7Message, header: Header, origin: MessageOrigin,
           source: Source) -> tuple[Command, str]:
    trigger = header.trigger
    if trigger == "A35":
        # Account numbers only: the patient stays who it is; its PID is still an update.
        return _upsert(message, origin, source), f"A35: {_ACCOUNTS_NOT_KEPT}; the PID was applied"
    reading = _reading(trigger, header.version)
    merges = tuple(RecordMerge(survivor=key, prior=prior, update=update, prior_identifiers=ids,
                               group=number)
                   for number, (key, update, prior, ids) in enumerate(_pairs(message, source, reading), 1))
    note = f"{trigger}: {_ACCOUNTS_NOT_KEPT}; the records were merged" if reading.accounts else ""
    return MergePatientRecords(origin=origin, merges=merges), note


def _reading(trigger: str, version: str) -> _Reading:
    if trigger == "A39":
        return _A39_PERSON_LEVEL if _before(version, (2, 7)) else _A39_IDENTIFIER_LIST
    # Triggers outside the family routed here by an analyst are read as A40 is.
    return _READINGS.get(trigger, _READINGS["A40"])


def _before(version: str, limit: tuple[int, int]) -> bool:
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return True  # no usable MSH-12: read as the older versions did
    return (major, minor) < limit


def _pairs(message: Er7Message, source: Source, reading: _Reading,
           ) -> Iterator[tuple[RecordKey, DemographicsUpdate, RecordKey, tuple[Identifier, ...]]]:
    """Each group's surviving key and update, and its non-surviving key and identifiers."""
    groups = _groups(message)
    if not reading.several and len(groups) > 1:
        raise InvalidMessage(f"this event merges one patient, but the message has {len(groups)} "
                             "PID segments", "PID(2)", code="100")
    for group in groups:
        if group.mrg is None:
            raise InvalidMessage(f"patient group {group.number} has no MRG segment after its PID",
                                 f"PID({group.number})" if group.number > 1 else "PID", code="101")
        try:
            key_field = 2 if reading.survivor_field == 2 and _filled(group.pid, 2) else 3
            key, update = patient_update(group.pid, source, key_field=key_field)
        except RejectedMessage as exc:
            raise in_occurrence(exc, group.number) from None
        try:
            prior, identifiers = _prior(group.mrg, reading, source)
        except RejectedMessage as exc:
            raise in_occurrence(exc, group.mrg_number) from None
        yield key, update, prior, identifiers


def _prior(mrg: Segment, reading: _Reading, source: Source) -> tuple[RecordKey, tuple[Identifier, ...]]:
    field = next((f for f in reading.prior_fields if _filled(mrg, f)), reading.prior_fields[0])
    identifiers = identifiers_in(mrg, field, source)
    return record_key(identifiers, source, f"MRG-{field}"), identifiers


def _filled(segment: Segment, field: int) -> bool:
    return segment.raw_field(field) not in ("", HL7_NULL)


def _groups(message: Er7Message) -> list[_Group]:
    """Every PID with the MRG that follows it."""
    groups: list[_Group] = []
    mrgs = 0
    for segment in message.segments:
        if segment.name == "PID":
            groups.append(_Group(len(groups) + 1, segment, None, 0))
        elif segment.name == "MRG":
            mrgs += 1
            where = f"MRG({mrgs})" if mrgs > 1 else "MRG"
            if not groups:
                raise InvalidMessage("an MRG segment comes before any PID", where, code="100")
            last = groups[-1]
            if last.mrg is not None:
                raise InvalidMessage(f"patient group {last.number} has two MRG segments", where,
                                     code="100")
            groups[-1] = _Group(last.number, last.pid, segment, mrgs)
    if not groups:
        raise InvalidMessage("the message has no PID segment", "PID")
    return groups
