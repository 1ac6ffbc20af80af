"""The MSH segment read into a small value: who sent what, and how it wants to be answered."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidMessage
from engine.routing import RouteRequest
from inbound.hl7.reader import HL7_NULL, Er7Message

__all__ = ["Header", "read_header"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """MSH values portalbridge acts on. ``raw_*`` are echoed verbatim in the ACK."""

    raw_sending_application: str
    raw_sending_facility: str
    raw_receiving_application: str
    raw_receiving_facility: str
    sending_application: str
    sending_facility: tuple[str, ...]
    message_type: str
    trigger: str
    structure: str
    control_id: str
    processing_id: str
    version: str
    accept_ack: str  # MSH-15: AL, NE, ER, SU; empty means original acknowledgement mode
    application_ack: str  # MSH-16
    charset: str

    @property
    def sender(self) -> str:
        """The idempotency scope of MSH-10: sending application at sending facility."""
        return f"{self.sending_application}^{self.sending_facility[0] if self.sending_facility else ''}"

    @property
    def enhanced_mode(self) -> bool:
        return bool(self.accept_ack or self.application_ack)

    def route_request(self) -> RouteRequest:
        return RouteRequest(sender_application=self.sending_application,
                            sender_facility=self.sending_facility,
                            message_type=self.message_type, trigger=self.trigger,
                            version=self.version)


def read_header(message: Er7Message) -> Header:
    """Read MSH; raise ``InvalidMessage`` when a value we cannot do without is missing."""
    msh = message.msh
    header = Header(
        raw_sending_application=msh.raw_field(3), raw_sending_facility=msh.raw_field(4),
        raw_receiving_application=msh.raw_field(5), raw_receiving_facility=msh.raw_field(6),
        sending_application=_text(msh.value(3)),
        sending_facility=tuple(v for v in (_text(msh.value(4)), _text(msh.value(4, 2))) if v),
        message_type=_text(msh.value(9)).upper(), trigger=_text(msh.value(9, 2)).upper(),
        structure=_text(msh.value(9, 3)).upper(), control_id=_text(msh.value(10)),
        processing_id=_text(msh.value(11)), version=_text(msh.value(12)),
        accept_ack=_text(msh.value(15)).upper(), application_ack=_text(msh.value(16)).upper(),
        charset=_text(msh.value(18)),
    )
    _require(header.control_id, "MSH-10", "message control id")
    _require(header.message_type, "MSH-9", "message type")
    _require(header.trigger, "MSH-9.2", "trigger event")
    return header


def control_id_of(message: Er7Message) -> str:
    """MSH-10 as sent, for ACKs of messages whose header is otherwise unusable."""
    return _text(message.msh.value(10))


def _text(value: str) -> str:
    return "" if value == HL7_NULL else value.strip()


def _require(value: str, location: str, name: str) -> None:
    if not value:
        raise InvalidMessage(f"{location} ({name}) is required", location)
