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

__all__ = ["check_header", "check_identifier", "check_text", "segment_label"]

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


def check_text(message: Er7Message, text: str) -> None:
    """Refuse the first value holding a NUL or a lone surrogate, by its place.

    The text is searched at C speed; only a message holding such a character, or a hex
    escape (``\\X00\\`` decodes to a NUL), is walked value by value.
    """
    if first_unstorable(text) is None and f"{message.delimiters.escape}X" not in text:
        return
    for location, value in _leaves(message):
        _refuse_if(value_problem(value), location)


def check_identifier(identifier: Identifier, element: Element, where: str) -> None:
    """A CX read from ``element`` at ``where`` (``PID-3(2)``): ID, authority and type fit."""
    _refuse_if(value_problem(identifier.value, IDENTIFIER_VALUE_CHARS), f"{where}.1")
    authority_at = f"{where}.4.1" if element.component(4, 1).strip() else f"{where}.4.2"
    _refuse_if(value_problem(identifier.authority, AUTHORITY_CHARS), authority_at)
    _refuse_if(value_problem(identifier.type_code, IDENTIFIER_TYPE_CHARS), f"{where}.5")


def segment_label(name: str, occurrence: int) -> str:
    """``PID`` for the first PID of a message, ``PID(2)`` for the second."""
    return name if occurrence == 1 else f"{name}({occurrence})"


def _leaves(message: Er7Message) -> list[tuple[str, str]]:
    """Every unescaped leaf value with its location, in message order."""
    found: list[tuple[str, str]] = []
    component = message.delimiters.component
    seen: dict[str, int] = {}
    for segment in message.segments:
        seen[segment.name] = seen.get(segment.name, 0) + 1
        label = segment_label(segment.name, seen[segment.name])
        for number in range(1, segment.field_count + 1):
            for repetition, element in enumerate(segment.repetitions(number), 1):
                for part in range(1, element.raw.count(component) + 2):
                    where = f"{label}-{number}({repetition}).{part}"
                    leaves = element.subcomponents(part)
                    found.extend((f"{where}.{sub}" if len(leaves) > 1 else where, value)
                                 for sub, value in enumerate(leaves, 1))
    return found


def _refuse_if(problem: str | None, location: str) -> None:
    if problem is not None:
        raise InvalidMessage(f"{location} {problem}", location, code="102")
