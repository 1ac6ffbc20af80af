"""Journal entries of HL7 v2 messages: what was received, what it was answered, what it did.

The outcome is the application's answer whatever the acknowledgement mode: ``AA`` applied
(or nothing to apply, or a duplicate), ``AE`` not applied for a transient reason, ``AR``
refused; the response holds the acknowledgements exactly as sent (``CA`` then ``AA`` in
enhanced mode), one per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.commands import Outcome
from engine.errors import EngineError, RejectedMessage, TransientFailure
from engine.journal import JournalEntry, effects_of
from inbound.hl7.header import Header

__all__ = ["Received", "hl7_entry", "outcome_code", "sniff_control_id", "sniff_msh"]


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it arrived: its bytes (None: encode the text), channel and time."""

    channel: str
    at: datetime
    raw: bytes | None = None
    reprocess_of: int | None = None


def outcome_code(error: EngineError | None) -> str:
    """AA, AE or AR for the application's result (acknowledgement mode aside)."""
    if error is None:
        return "AA"
    return "AE" if isinstance(error, TransientFailure) or not isinstance(error, RejectedMessage) else "AR"


def hl7_entry(received: Received, text: str, encoding: str, *, header: Header | None,
              control_id: str, acks: list[str], outcome: Outcome | None,
              error: EngineError | None) -> JournalEntry:
    """The journal entry of one message and the acknowledgements it was answered with."""
    refused = error if isinstance(error, RejectedMessage) else None
    code = "207" if error is not None and refused is None else ""
    sender, message_type = ((header.sender, f"{header.message_type}^{header.trigger}")
                            if header is not None else sniff_msh(text)[:2])
    return JournalEntry(
        channel=received.channel, received_at=received.at, sender=sender,
        control_id=control_id, message_type=message_type,
        outcome=outcome_code(error),
        error_code=refused.hl7_error_code if refused is not None else code,
        error_location=(refused.location or "") if refused is not None else "",
        effects=effects_of(outcome) if outcome is not None else {},
        payload=received.raw if received.raw is not None
        else text.encode(encoding, errors="replace"),
        response="\n".join(acks).encode(encoding, errors="replace"),
        reprocess_of=received.reprocess_of)


def sniff_msh(text: str) -> tuple[str, str, str]:
    """Best effort, for a message that could not be read: its sender (MSH-3^MSH-4, first
    components), message type (MSH-9 as written) and control id (MSH-10)."""
    start = text.find("MSH")
    if start < 0 or len(text) < start + 4:
        return "", "", ""
    separator = text[start + 3]
    fields = text[start:].replace("\n", "\r").split("\r", 1)[0].split(separator)
    # fields[1] is MSH-2 (MSH-1 is the separator itself): MSH-n is fields[n - 1].
    sender = "^".join(fields[n].split("^", 1)[0].strip()[:100] if n < len(fields) else ""
                      for n in (2, 3)).strip("^")
    message_type = fields[8].strip()[:64] if len(fields) > 8 else ""
    return sender, message_type, fields[9].strip()[:199] if len(fields) > 9 else ""


def sniff_control_id(text: str) -> str:
    """Best-effort MSH-10 of a message we could not parse, so the AR can still echo it."""
    return sniff_msh(text)[2]
