"""ADT messages translated into canonical commands (the core never sees an HL7 type).

HL7 v2 update semantics are kept: a PID field that was not sent leaves the stored value
alone, the explicit null ``""`` clears it, and any other value replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine.commands import (
    ChangePatientIdentifier,
    Command,
    IdentifierChange,
    MergePatientRecords,
    MessageOrigin,
    RecordMerge,
    UpsertPatientRecord,
)
from engine.errors import InvalidMessage
from engine.routing import RouteDecision
from engine.rules import Action, Facility
from inbound.hl7 import datatypes
from inbound.hl7.header import Header
from inbound.hl7.reader import HL7_NULL, Element, Er7Message, Segment
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey

__all__ = ["patient_update", "translate"]


@dataclass(frozen=True, slots=True)
class _Source:
    """The sending facility and how its authority names are resolved."""

    facility: Facility
    canonical_authority: Callable[..., str]

    @property
    def code(self) -> str:
        return self.facility.code

_SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}
_PRIMARY_TYPES = ("MR", "MRN", "PI", "PT", "PN")


def translate(message: Er7Message, header: Header, decision: RouteDecision) -> Command | None:
    """The command for a routed message, or None for routes that apply nothing."""
    action = decision.route.action
    origin = MessageOrigin(channel="hl7", sender=header.sender, control_id=header.control_id,
                           message_type=f"{header.message_type}^{header.trigger}",
                           facility=decision.facility.code)
    facility = _Source(decision.facility, decision.canonical_authority)
    if action is Action.UPSERT_PATIENT:
        pid = message.segment("PID")
        if pid is None:
            raise InvalidMessage("the message has no PID segment", "PID")
        key, update = patient_update(pid, facility)
        return UpsertPatientRecord(origin=origin, key=key, update=update,
                                   enroll=decision.route.enroll)
    if action is Action.MERGE_PATIENTS:
        merges = tuple(RecordMerge(survivor=key, prior=prior, update=update)
                       for key, update, prior in _pid_mrg_groups(message, facility))
        return MergePatientRecords(origin=origin, merges=merges)
    if action is Action.CHANGE_IDENTIFIER:
        changes = tuple(IdentifierChange(old=prior, new=key, update=update)
                        for key, update, prior in _pid_mrg_groups(message, facility))
        return ChangePatientIdentifier(origin=origin, changes=changes)
    return None


def _pid_mrg_groups(message: Er7Message,
                    facility: _Source) -> Iterator[tuple[RecordKey, DemographicsUpdate, RecordKey]]:
    """Every PID with the MRG that follows it (A40 and A47 may carry several groups)."""
    groups: list[tuple[Segment, Segment | None]] = []
    for segment in message.segments:
        if segment.name == "PID":
            groups.append((segment, None))
        elif segment.name == "MRG" and groups:
            pid, mrg = groups[-1]
            if mrg is not None:
                raise InvalidMessage(f"patient group {len(groups)} has two MRG segments", "MRG")
            groups[-1] = (pid, segment)
    if not groups:
        raise InvalidMessage("the message has no PID segment", "PID")
    for number, (pid, mrg) in enumerate(groups, start=1):
        if mrg is None:
            raise InvalidMessage(f"patient group {number} has no MRG segment", "MRG")
        key, update = patient_update(pid, facility)
        prior = _primary(_identifiers(mrg.repetitions(1), facility), "MRG-1")
        yield key, update, RecordKey(facility.code, prior.authority, prior.value)


def patient_update(pid: Segment, facility: _Source) -> tuple[RecordKey, DemographicsUpdate]:
    """The record key and the demographics a PID segment states."""
    values: dict[str, Any] = {}
    present: set[str] = set()
    for name, fields, read in _PID_FIELDS:
        if any(pid.raw_field(n) for n in fields):
            present.add(name)
            values[name] = read(pid, facility)
    if "telecoms" in present:
        telecoms = values.pop("telecoms")
        present.discard("telecoms")
        present.update(("phones", "emails"))
        values["phones"] = tuple(t for t in telecoms if t.system != "email")
        values["emails"] = tuple(t for t in telecoms if t.system == "email")
    identifiers = values.get("identifiers", ())
    if not identifiers and pid.raw_field(2) not in ("", HL7_NULL):
        # Before v2.3 the patient id travelled in PID-2; accept it when PID-3 is empty.
        identifiers = _identifiers(pid.repetitions(2), facility)
        values["identifiers"] = identifiers
        present.add("identifiers")
    primary = _primary(identifiers, "PID-3")
    if "ssn" not in present and any(i.type_code in {"SS", "SSN"} for i in identifiers):
        values["ssn"] = next(i.value for i in identifiers if i.type_code in {"SS", "SSN"})
        present.add("ssn")
    key = RecordKey(facility.code, primary.authority, primary.value)
    return key, DemographicsUpdate(Demographics(**values), frozenset(present))


def _primary(identifiers: tuple[Identifier, ...], location: str) -> Identifier:
    """The identifier a record is keyed by: the first MR (or similar), else the first linkable."""
    for wanted in _PRIMARY_TYPES:
        for identifier in identifiers:
            if identifier.type_code == wanted and identifier.authority:
                return identifier
    for identifier in identifiers:
        if identifier.authority and identifier.type_code not in {"SS", "SSN"}:
            return identifier
    raise InvalidMessage(f"{location} holds no patient identifier", location)


def _identifiers(elements: list[Element], source: _Source) -> tuple[Identifier, ...]:
    found = (datatypes.identifier(e, source.facility.default_authority, source.canonical_authority)
             for e in elements if not e.is_null)
    return tuple(dict.fromkeys(i for i in found if i is not None))


def _names(pid: Segment, _source: _Source) -> tuple[Any, ...]:
    return tuple(n for n in (datatypes.name(e) for e in pid.repetitions(5) if not e.is_null) if n)


def _mothers_maiden_name(pid: Segment, _source: _Source) -> str:
    value = pid.value(6)
    return "" if value == HL7_NULL else value.strip()


def _birth_date(pid: Segment, _source: _Source) -> str:
    value = pid.value(7)
    return "" if value in ("", HL7_NULL) else datatypes.dtm_date(value, "PID-7")


def _sex(pid: Segment, _source: _Source) -> str:
    value = pid.value(8).strip().upper()
    return "" if value in ("", HL7_NULL) else _SEX.get(value, "unknown")


def _addresses(pid: Segment, _source: _Source) -> tuple[Any, ...]:
    return tuple(a for a in (datatypes.address(e) for e in pid.repetitions(11) if not e.is_null) if a)


def _telecoms(pid: Segment, _source: _Source) -> tuple[Any, ...]:
    found = [datatypes.telecom(e, "home") for e in pid.repetitions(13) if not e.is_null]
    found += [datatypes.telecom(e, "work") for e in pid.repetitions(14) if not e.is_null]
    return tuple(dict.fromkeys(t for t in found if t is not None))


def _ssn(pid: Segment, _source: _Source) -> str:
    value = pid.value(19)
    return "" if value == HL7_NULL else value.strip()


def _deceased_at(pid: Segment, _source: _Source) -> str:
    value = pid.value(29)
    return "" if value in ("", HL7_NULL) else datatypes.dtm_datetime(value, "PID-29")


def _deceased(pid: Segment, _source: _Source) -> bool | None:
    value = pid.value(30).strip().upper()
    return {"Y": True, "N": False}.get(value)


def _pid3(pid: Segment, facility: _Source) -> tuple[Identifier, ...]:
    return _identifiers(pid.repetitions(3), facility)


_PID_FIELDS: tuple[tuple[str, tuple[int, ...], Callable[[Segment, _Source], Any]], ...] = (
    ("identifiers", (3,), _pid3),
    ("names", (5,), _names),
    ("mothers_maiden_name", (6,), _mothers_maiden_name),
    ("birth_date", (7,), _birth_date),
    ("sex", (8,), _sex),
    ("addresses", (11,), _addresses),
    ("telecoms", (13, 14), _telecoms),  # split into phones and emails below
    ("ssn", (19,), _ssn),
    ("deceased_at", (29,), _deceased_at),
    ("deceased", (30,), _deceased),
)
