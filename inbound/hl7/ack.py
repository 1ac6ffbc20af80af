"""HL7 acknowledgements: which ones a message asked for, and their ER7 text.

Original mode (MSH-15 and MSH-16 empty): one ACK, AA after commit, AE for a transient
failure (resend later), AR for a message that must not be resent as it is.

Enhanced mode: MSH-15 says when to send the accept acknowledgement (CA after commit, CE,
CR) and MSH-16 when to send the application acknowledgement (AA, AE, AR), each one of AL
(always), NE (never), ER (only on error) and SU (only on success). An empty MSH-15 in
enhanced mode means AL; an empty MSH-16 means NE. Both go back on the same connection,
accept acknowledgement first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from engine.errors import EngineError, RejectedMessage
from inbound.hl7.header import Header
from inbound.hl7.reader import Delimiters

__all__ = ["AckParts", "ack_codes", "build_ack"]

_ERROR_TEXT = {
    "0": "Message accepted",
    "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id",
    "203": "Unsupported version id", "204": "Unknown key identifier",
    "205": "Duplicate key identifier", "206": "Application record locked",
    "207": "Application internal error",
}
#: ``PID-7``, ``MSH-9.2``, ``PID-3(2).4.1`` (repetition 2), ``PID(2)-3(1).1`` (second PID).
_LOCATION = re.compile(r"^([A-Z0-9]{3})(?:\((\d+)\))?(?:-(\d+)(?:\((\d+)\))?(?:\.(\d+)(?:\.(\d+))?)?)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class AckParts:
    """What an acknowledgement answers: the inbound header (when readable) and the result."""

    header: Header | None
    delimiters: Delimiters
    control_id: str  # MSH-10 of the message answered, "" when it could not be read
    error: EngineError | None = None
    text: str = ""
    #: Problems repaired before applying: an ERR of severity W each (v2.5 on).
    warnings: tuple[RejectedMessage, ...] = ()


def ack_codes(header: Header | None, error: EngineError | None) -> list[str]:
    """The acknowledgement codes to send, in order (possibly none in enhanced mode)."""
    rejected, failed = isinstance(error, RejectedMessage), error is not None
    if header is None or not header.enhanced_mode:
        return ["AR" if rejected else "AE" if failed else "AA"]
    codes = []
    if _wanted(header.accept_ack or "AL", failed):
        codes.append("CR" if rejected else "CE" if failed else "CA")
    if _wanted(header.application_ack or "NE", failed):
        codes.append("AR" if rejected else "AE" if failed else "AA")
    return codes


def _wanted(condition: str, failed: bool) -> bool:
    # A value outside HL7 table 0155 (AL, NE, ER, SU) is answered as AL: silence would leave
    # the sender waiting for an acknowledgement for ever (found by fuzzing: MSH-15 "F").
    if condition == "NE":
        return False
    if condition in ("ER", "SU"):
        return failed == (condition == "ER")
    return True


def build_ack(parts: AckParts, code: str, *, now: datetime, ack_id: str,
              defaults: tuple[str, str] = ("PORTALBRIDGE", "PORTALBRIDGE")) -> str:
    """The ER7 text of one acknowledgement, segments joined with CR."""
    d, h = parts.delimiters, parts.header
    esc = Escape(d)
    trigger = h.trigger if h else ""
    msh = d.field.join([
        "MSH", d.encoding_characters,
        (h.raw_receiving_application if h else "") or esc(defaults[0]),
        (h.raw_receiving_facility if h else "") or esc(defaults[1]),
        h.raw_sending_application if h else "", h.raw_sending_facility if h else "",
        now.strftime("%Y%m%d%H%M%S") + _offset(now), "",
        d.component.join(["ACK", esc(trigger), "ACK"]), esc(ack_id),
        esc(h.processing_id if h and h.processing_id else "P"),
        esc(h.version if h and h.version else "2.5"),
        "", "", "", "", "", "", esc(h.charset) if h and h.charset else "",
    ]).rstrip(d.field)
    reason = parts.error.reason if parts.error is not None else parts.text
    segments = [msh, d.field.join(["MSA", code, esc(parts.control_id), esc(reason[:80])]).rstrip(d.field)]
    version = h.version if h else "2.5"
    if parts.error is not None:
        segments.append(_err_segment(parts.error, d, esc, version))
    elif not _before_v25(version):  # ERR-4 severity exists from v2.5 on
        segments += [_err_segment(w, d, esc, version, severity="W") for w in parts.warnings]
    return "\r".join(segments) + "\r"


def _err_segment(error: EngineError, d: Delimiters, esc: Escape, version: str,
                 severity: str = "E") -> str:
    code = error.hl7_error_code if isinstance(error, RejectedMessage) else "207"
    if severity == "W":
        code = "0"  # table 0357: message accepted
    location = error.location if isinstance(error, RejectedMessage) else None
    parts = _location_parts(location)
    coded = [code, _ERROR_TEXT.get(code, ""), "HL70357"]
    if _before_v25(version):
        eld = [*parts[:3], d.subcomponent.join(coded)] if parts else ["", "", "", d.subcomponent.join(coded)]
        return d.field.join(["ERR", d.component.join(eld).rstrip(d.component)])
    fields = ["ERR", "", d.component.join(parts).rstrip(d.component), d.component.join(coded),
              severity, "", "", "", esc(error.reason)]
    return d.field.join(fields)


def _location_parts(location: str | None) -> list[str]:
    """``PID-3(2).4.1`` -> segment^sequence^field^repetition^component^sub-component (ERL)."""
    match = _LOCATION.match(location or "")
    if match is None:
        return []
    segment, sequence, field_, repetition, component, sub = match.groups()
    return [segment, sequence or "1", field_ or "", repetition or ("1" if field_ else ""),
            component or "", sub or ""]


def _before_v25(version: str) -> bool:
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < (2, 5)


def _offset(now: datetime) -> str:
    return now.strftime("%z") if now.tzinfo else ""


class Escape:
    """Callable escaping of text for one set of delimiters (escape char first)."""

    __slots__ = ("_pairs",)

    def __init__(self, d: Delimiters) -> None:
        e = d.escape or "\\"
        self._pairs = [(e, f"{e}E{e}"), (d.field, f"{e}F{e}"), (d.component, f"{e}S{e}"),
                       (d.subcomponent, f"{e}T{e}"), (d.repetition, f"{e}R{e}")]

    def __call__(self, text: str) -> str:
        for raw, escaped in self._pairs:
            if raw and raw in text:
                text = text.replace(raw, escaped)
        return text.replace("\r", " ").replace("\n", " ")
