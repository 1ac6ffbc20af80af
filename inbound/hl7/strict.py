"""Strict structure validation with hl7apy, for routes that ask for it (``strict: true``).

hl7apy is far too slow for every message (tens per second), so it is the reference and the
strict gate, not the reader. Its exceptions are translated here, where it is called, into a
refusal at the real place: the segment occurrence, group or field at fault (``PID(2)-5``,
``MRG(3)``), found again from the message when hl7apy's own words do not say it. Some of
its messages quote the offending value (a name that is too long, say), so reasons are
written here from element names, never from hl7apy's text.
"""

from __future__ import annotations

import re
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message
from hl7apy.exceptions import (
    ChildNotFound,
    ChildNotValid,
    HL7apyException,
    MaxChildLimitReached,
)
from hl7apy.parser import parse_field, parse_message, parse_segment

from engine.errors import InvalidMessage
from inbound.hl7.reader import Er7Message, parse

__all__ = ["validate_structure"]

#: What hl7apy raises on malformed input besides its own exceptions.
_PARSE_ERRORS = (HL7apyException, ValueError, KeyError, IndexError, AttributeError, TypeError)
#: ``Missing required child ADT_A39_PATIENT.MRG``, ``Child limit exceeded PID.PID_3``, ...
_NAMED = re.compile(r"(Missing required child|Child limit exceeded) ([A-Z0-9_]+)\.([A-Z0-9_]+)")
_FIELD = re.compile(r"^([A-Z][A-Z0-9]{2})_(\d+)$")


def validate_structure(text: str) -> None:
    """Raise ``InvalidMessage`` at the place at fault unless ``text`` is a valid message of
    its declared structure."""
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    except MaxChildLimitReached as exc:
        raise _too_many(parse(text), exc.child.name, int(exc.limit)) from exc
    except ChildNotValid as exc:
        raise _misplaced(parse(text), str(getattr(exc.child, "name", ""))) from exc
    except _PARSE_ERRORS as exc:
        raise _bad_value(parse(text), exc) from exc
    try:
        message.validate()
    except HL7apyException as exc:
        raise _invalid_structure(parse(text), message, str(exc)) from exc


def _refusal(location: str, what: str, code: str = "100") -> InvalidMessage:
    return InvalidMessage(f"structure validation failed: {location} {what}", location, code=code)


def _label(name: str, occurrence: int) -> str:
    return name if occurrence <= 1 else f"{name}({occurrence})"


def _too_many(ours: Er7Message, name: str, limit: int) -> InvalidMessage:
    return _refusal(_label(name, limit + 1),
                    f"is one {name} segment too many (the structure allows {limit})")


def _misplaced(ours: Er7Message, name: str) -> InvalidMessage:
    return _refusal(name or "MSH", "is not allowed where it stands in this message structure")


def _invalid_structure(ours: Er7Message, message: Message, words: str) -> InvalidMessage:
    named = _NAMED.search(words)
    if named is None:
        return _refusal("MSH-9.3", "does not match the message's segments")
    kind, parent, child = named.groups()
    field = _FIELD.match(child)
    if field is not None:  # a field of a segment: the first occurrence lacking (or over) it
        segment, number = field.group(1), int(field.group(2))
        where = f"{_label(segment, _lacking_field(ours, segment, number))}-{number}"
        return _refusal(where, "is required and missing" if kind.startswith("Missing")
                        else "repeats more often than allowed", "101")
    if kind.startswith("Child limit"):
        return _too_many(ours, child, len(ours.segments_named(child)) - 1)
    return _missing_child(ours, message, parent, child)


def _lacking_field(ours: Er7Message, segment: str, number: int) -> int:
    for occurrence, each in enumerate(ours.segments_named(segment), 1):
        if not each.raw_field(number):
            return occurrence
    return 1


def _missing_child(ours: Er7Message, message: Message, parent: str, child: str) -> InvalidMessage:
    """A segment missing from the message, or from the n-th occurrence of a group."""
    groups = [g for g in _walk(message) if isinstance(g, Group) and g.name == parent]
    for number, group in enumerate(groups, 1):
        if not group.children.get(child):
            first = group.children[0].name if group.children else child
            occurrence = _occurrence_of_group(message, parent, number, first)
            return _refusal(_label(first, occurrence),
                            f"starts group {parent} {number}, which has no {child} segment", "101")
    return _refusal(child, f"is required in {parent} and missing", "101")


def _occurrence_of_group(message: Message, parent: str, number: int, first: str) -> int:
    """Which occurrence, among the message's segments called ``first``, starts group n."""
    count = 0
    for element in _walk(message):
        if isinstance(element, Group) and element.name == parent:
            number -= 1
            if number == 0:
                return count + 1
        elif getattr(element, "classname", "") == "Segment" and element.name == first:
            count += 1
    return 1


def _walk(element: Any) -> list[Any]:
    """Every group and segment under ``element``, in message order."""
    found: list[Any] = []
    for child in element.children:
        found.append(child)
        if isinstance(child, Group):
            found.extend(_walk(child))
    return found


def _bad_value(ours: Er7Message, error: Exception) -> InvalidMessage:
    """A value hl7apy could not take: found again segment by segment, then field by field."""
    version = ours.msh.value(12) or "2.5"
    d = ours.delimiters
    chars = {"FIELD": d.field, "COMPONENT": d.component, "REPETITION": d.repetition,
             "ESCAPE": d.escape, "SUBCOMPONENT": d.subcomponent}
    seen: dict[str, int] = {}
    for segment in ours.segments:
        seen[segment.name] = seen.get(segment.name, 0) + 1
        try:
            parse_segment(segment.raw, version=version, encoding_chars=chars,
                          validation_level=VALIDATION_LEVEL.STRICT)
        except _PARSE_ERRORS:
            where = _label(segment.name, seen[segment.name])
            field = _bad_field(segment.name, segment.raw.split(d.field), version, chars)
            return _refusal(f"{where}-{field}" if field else where,
                            "does not fit its HL7 data type or length", "102")
    return _refusal("MSH", f"could not be read by the validator ({type(error).__name__})", "102")


def _bad_field(name: str, fields: list[str], version: str, chars: dict[str, str]) -> int | None:
    first = 3 if name == "MSH" else 1  # MSH-1 and MSH-2 are the delimiters themselves
    for number in range(first, len(fields) + (1 if name == "MSH" else 0)):
        text = fields[number - 1] if name == "MSH" else fields[number]
        if not text:
            continue
        try:
            parse_field(text, name=f"{name}_{number}", version=version, encoding_chars=chars,
                        validation_level=VALIDATION_LEVEL.STRICT)
        except (ChildNotFound, *_PARSE_ERRORS):
            return number
    return None
