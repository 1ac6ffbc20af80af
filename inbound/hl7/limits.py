"""What the store can hold, checked in HL7 terms before a message becomes a command.

A value longer than its column, or holding a character no database stores (NUL, a lone
surrogate), is refused here with ``InvalidMessage`` (table 0357 code 102) naming the field
where the sender wrote it, so the ACK is AR (CR in enhanced mode) with an ERR that points at
it, on SQLite and PostgreSQL alike. The limits are the store's own (``mpi.limits``,
``engine.limits``); ``engine.limits.check_command`` checks every command once more.

Locations are written ``SEG-F``, with ``(n)`` for a segment's occurrence or a field's
repetition and ``.c.s`` for component and sub-component: ``PID-3(2).4.1`` is the namespace
id of the second PID-3 identifier; ``PID(2)-3(1).1`` the first identifier of the second PID.
"""

from __future__ import annotations

import functools
import re

from engine.errors import InvalidMessage
from engine.limits import CONTROL_ID_CHARS, MESSAGE_TYPE_CHARS, SENDER_CHARS
from inbound.hl7.header import Header
from inbound.hl7.reader import Element, Er7Message
from mpi.limits import (
    AUTHORITY_CHARS,
    IDENTIFIER_TYPE_CHARS,
    IDENTIFIER_VALUE_CHARS,
    first_unstorable,
    value_problem,
)
from mpi.model import Identifier

__all__ = ["MAX_REPETITIONS", "check_header", "check_identifier", "check_repetitions", "check_text",
           "segment_label"]

_HEADERS = frozenset({"MSH", "FHS", "BHS"})  # field 1 is the separator itself

def check_header(header: Header) -> None:
    """MSH values that go into the inbox: control id, sender, message type."""
    _refuse_if(value_problem(header.control_id, CONTROL_ID_CHARS), "MSH-10")
    if len(header.sender) > SENDER_CHARS:
        facility = header.sending_facility[0] if header.sending_facility else ""
        longer = "MSH-3.1" if len(header.sending_application) >= len(facility) else "MSH-4.1"
        raise InvalidMessage(f"{longer}: the sender MSH-3.1^MSH-4.1 is {len(header.sender)} "
                             f"characters long; at most {SENDER_CHARS} are accepted",
                             longer, code="102")
    kind = f"{header.message_type}^{header.trigger}"
    if len(kind) > MESSAGE_TYPE_CHARS:
        raise InvalidMessage(f"MSH-9: the message type and trigger event are {len(kind)} "
                             f"characters long; at most {MESSAGE_TYPE_CHARS} are accepted",
                             "MSH-9", code="102")


def check_text(message: Er7Message) -> None:
    """Refuse the first value holding a NUL or a lone surrogate, by its place.

    Linear and at C speed whatever the message's size: the characters are searched in the
    message's text, hex escapes (``\\X00\\`` decodes to a NUL) by one regular expression,
    and the place is worked out from the offset of the first one found.
    """
    raw = message.to_er7()
    offsets = [found for found in (first_unstorable(raw), _first_bad_escape(message, raw))
               if found is not None]
    if offsets:
        where = _place(message, raw, min(offsets))
        raise InvalidMessage(f"{where} holds a NUL character or a lone surrogate, which no "
                             "database stores", where, code="102")


def _first_bad_escape(message: Er7Message, raw: str) -> int | None:
    """The offset of the first ``\\Xhh..\\`` escape that decodes to an unstorable character."""
    escape = message.delimiters.escape
    if f"{escape}X" not in raw:
        return None
    for found in _hex_escapes(escape).finditer(raw):
        decoded = bytes.fromhex(found.group(1)).decode(message.encoding, errors="replace")
        if first_unstorable(decoded) is not None:
            return found.start()
    return None


@functools.cache
def _hex_escapes(escape: str) -> re.Pattern[str]:
    """Hex escapes holding a 00 byte: only they can decode to a NUL (the decoders replace
    lone surrogates), so only they are decoded."""
    mark = re.escape(escape)
    return re.compile(f"{mark}X((?:[0-9A-Fa-f]{{2}})*00(?:[0-9A-Fa-f]{{2}})*){mark}")


def _place(message: Er7Message, raw: str, offset: int) -> str:
    """The location (``PID(2)-5(1).1``) of the character at ``offset`` of ``raw``."""
    d = message.delimiters
    start = raw.rfind("\r", 0, offset) + 1
    end = raw.find("\r", offset)
    segment = raw[start:end if end >= 0 else len(raw)]
    name = segment[:3]
    occurrence = sum(1 for s in raw[:start].split("\r") if s[:3] == name)
    before = segment[:offset - start]
    field = before.count(d.field) + (1 if name in _HEADERS else 0)
    in_field = before[before.rfind(d.field) + 1:]
    repetition = in_field.count(d.repetition) + 1
    in_repetition = in_field[in_field.rfind(d.repetition) + 1:]
    component = in_repetition.count(d.component) + 1
    in_component = in_repetition[in_repetition.rfind(d.component) + 1:]
    rest = segment[offset - start:]
    whole = in_component + rest[:min((i for i in (rest.find(c) for c in
                                                  (d.component, d.repetition, d.field)) if i >= 0),
                                     default=len(rest))]
    label = segment_label(name, occurrence + 1)
    where = f"{label}-{field}({repetition}).{component}"
    return f"{where}.{in_component.count(d.subcomponent) + 1}" if d.subcomponent in whole else where


def check_identifier(identifier: Identifier, element: Element, where: str) -> None:
    """A CX read from ``element`` at ``where`` (``PID-3(2)``): ID, authority and type fit."""
    _refuse_if(value_problem(identifier.value, IDENTIFIER_VALUE_CHARS), f"{where}.1")
    authority_at = f"{where}.4.1" if element.component(4, 1).strip() else f"{where}.4.2"
    _refuse_if(value_problem(identifier.authority, AUTHORITY_CHARS), authority_at)
    _refuse_if(value_problem(identifier.type_code, IDENTIFIER_TYPE_CHARS), f"{where}.5")


#: Repetitions of one PID or MRG field, at most (FHIR's JSON arrays have the same bound):
#: 100,000 identifiers in a 1.5 MB frame took a second to read and as many index rows.
MAX_REPETITIONS = 1000


def check_repetitions(message: Er7Message) -> None:
    """Refuse a PID or MRG field repeated more than ``MAX_REPETITIONS`` times, by name."""
    repetition = message.delimiters.repetition
    for name in ("PID", "MRG"):
        for occurrence, segment in enumerate(message.segments_named(name), start=1):
            for n in range(1, segment.field_count + 1):
                count = segment.raw_field(n).count(repetition) + 1
                if count > MAX_REPETITIONS:
                    location = f"{segment_label(name, occurrence)}-{n}"
                    raise InvalidMessage(f"{location} repeats {count} times; at most "
                                         f"{MAX_REPETITIONS} repetitions are accepted",
                                         location, code="102")


def segment_label(name: str, occurrence: int) -> str:
    """``PID`` for the first PID of a message, ``PID(2)`` for the second."""
    return name if occurrence == 1 else f"{name}({occurrence})"


def _refuse_if(problem: str | None, location: str) -> None:
    if problem is not None:
        raise InvalidMessage(f"{location} {problem}", location, code="102")
