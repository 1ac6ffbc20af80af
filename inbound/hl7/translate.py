"""The PID segment translated into the index's values: a record key and a demographics update.

HL7 v2 update semantics are kept: a PID field that was not sent leaves the stored value
alone, the explicit null ``""`` clears it, and any other value replaces it. Which command a
message becomes (upsert, a merge, an identifier change) is decided in ``inbound.hl7.adt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidMessage
from engine.routing import RouteDecision
from engine.rules import Facility
from inbound.hl7 import datatypes
from inbound.hl7.limits import check_identifier
from inbound.hl7.reader import HL7_NULL, Element, Segment
from mpi.keys import record_key_identifier
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey, distinct_identifiers

__all__ = ["Source", "identifiers_in", "patient_update", "record_key"]


@dataclass(frozen=True, slots=True)
class Source:
    """The sending facility, how its authority names are resolved, and its key authorities."""

    facility: Facility
    canonical_authority: Callable[..., str]
    key_authorities: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        return self.facility.code

    @classmethod
    def of(cls, decision: RouteDecision) -> Source:
        return cls(decision.facility, decision.canonical_authority,
                   decision.key_authorities or (decision.facility.default_authority,))


_SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}


def patient_update(pid: Segment, facility: Source, *,
                   key_field: int = 3) -> tuple[RecordKey, DemographicsUpdate]:
    """The record key and the demographics a PID segment states.

    The key is chosen from PID-3 (PID-2 when PID-3 is empty, as before v2.3) by the rule of
    ``mpi.keys``; ``key_field=2`` chooses it from PID-2 (the person-level id A39 merges by,
    up to v2.6), whose identifiers then join the record's.
    """
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
        identifiers = _identifiers(pid.repetitions(2), facility, "PID-2")
        values["identifiers"] = identifiers
        present.add("identifiers")
    keyed_by, where = identifiers, "PID-3"
    if key_field == 2:
        keyed_by, where = _identifiers(pid.repetitions(2), facility, "PID-2"), "PID-2"
        values["identifiers"] = identifiers = distinct_identifiers((*keyed_by, *identifiers))
        present.add("identifiers")
    if "ssn" not in present and any(i.type_code in {"SS", "SSN"} for i in identifiers):
        values["ssn"] = next(i.value for i in identifiers if i.type_code in {"SS", "SSN"})
        present.add("ssn")
    key = record_key(keyed_by, facility, where)
    return key, DemographicsUpdate(Demographics(**values), frozenset(present))


def record_key(identifiers: tuple[Identifier, ...], source: Source, location: str) -> RecordKey:
    """The key of the facility's record named by ``identifiers``, whatever their order."""
    chosen = record_key_identifier(identifiers, source.key_authorities)
    if chosen is None:
        raise InvalidMessage(f"{location} holds no patient identifier", location)
    return RecordKey(source.code, chosen.authority, chosen.value)


def identifiers_in(segment: Segment, field: int, source: Source) -> tuple[Identifier, ...]:
    """The identifiers (CX, every repetition) in one field of a segment (PID-3, MRG-1, ...)."""
    return _identifiers(segment.repetitions(field), source, f"{segment.name}-{field}")


def _identifiers(elements: list[Element], source: Source, where: str) -> tuple[Identifier, ...]:
    """The CX repetitions of a field (``where``: ``PID-3``), each checked to fit the store;
    errors name the repetition (``PID-3(2).1``), callers the segment's occurrence."""
    found: list[Identifier] = []
    for number, element in enumerate(elements, start=1):
        if element.is_null:
            continue
        identifier = datatypes.identifier(element, source.facility.default_authority,
                                          source.canonical_authority)
        if identifier is not None:
            check_identifier(identifier, element, f"{where}({number})")
            found.append(identifier)
    return distinct_identifiers(found)


def _names(pid: Segment, _source: Source) -> tuple[Any, ...]:
    return tuple(n for n in (datatypes.name(e) for e in pid.repetitions(5) if not e.is_null) if n)


def _mothers_maiden_name(pid: Segment, _source: Source) -> str:
    value = pid.value(6)
    return "" if value == HL7_NULL else value.strip()


def _birth_date(pid: Segment, _source: Source) -> str:
    value = pid.value(7)
    return "" if value in ("", HL7_NULL) else datatypes.dtm_date(value, "PID-7")


def _sex(pid: Segment, _source: Source) -> str:
    value = pid.value(8).strip().upper()
    return "" if value in ("", HL7_NULL) else _SEX.get(value, "unknown")


def _addresses(pid: Segment, _source: Source) -> tuple[Any, ...]:
    return tuple(a for a in (datatypes.address(e) for e in pid.repetitions(11) if not e.is_null) if a)


def _telecoms(pid: Segment, _source: Source) -> tuple[Any, ...]:
    found = [datatypes.telecom(e, "home") for e in pid.repetitions(13) if not e.is_null]
    found += [datatypes.telecom(e, "work") for e in pid.repetitions(14) if not e.is_null]
    return tuple(dict.fromkeys(t for t in found if t is not None))


def _ssn(pid: Segment, _source: Source) -> str:
    value = pid.value(19)
    return "" if value == HL7_NULL else value.strip()


def _deceased_at(pid: Segment, _source: Source) -> str:
    value = pid.value(29)
    return "" if value in ("", HL7_NULL) else datatypes.dtm_datetime(value, "PID-29")


def _deceased(pid: Segment, _source: Source) -> bool | None:
    value = pid.value(30).strip().upper()
    return {"Y": True, "N": False}.get(value)


def _pid3(pid: Segment, facility: Source) -> tuple[Identifier, ...]:
    return _identifiers(pid.repetitions(3), facility, "PID-3")


_PID_FIELDS: tuple[tuple[str, tuple[int, ...], Callable[[Segment, Source], Any]], ...] = (
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
