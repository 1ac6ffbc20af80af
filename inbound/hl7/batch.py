"""One text, many messages: concatenated messages and HL7 batch files (FHS/BHS ... BTS/FTS).

Only segment names matter here: every MSH starts a message, the four envelope segments are
set aside, anything else belongs to the message before it. Each message is then read on its
own by :func:`inbound.hl7.reader.parse`, so messages may even declare different delimiters.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.hl7.reader import Er7Error, split_segments

__all__ = ["ENVELOPE_SEGMENTS", "Batch", "split_stream"]

#: File header and trailer, batch header and trailer (HL7 v2.5 section 2.10.3).
ENVELOPE_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})


@dataclass(frozen=True)
class Batch:
    """The messages of a stream, and its envelope segments if it is a batch file."""

    messages: list[str]  # each starts with "MSH", segments joined by "\r"
    envelope: list[str]  # FHS/BHS/BTS/FTS as written, in order

    @property
    def is_batch(self) -> bool:
        """True if the text carried a batch or file envelope."""
        return bool(self.envelope)


def split_stream(text: str) -> Batch:
    """Split ``text`` into messages; raise :class:`Er7Error` if a segment has no message.

    ``text`` may hold one message, several concatenated ones (any CR/LF/CRLF separators,
    blank lines between) or an FHS/BHS/BTS/FTS batch file. An envelope with no messages is a
    valid empty batch; a text without any segment is an error.
    """
    segments = split_segments(text)
    if not segments:
        raise Er7Error("the input holds no HL7 segments", "MSH")
    messages: list[list[str]] = []
    envelope: list[str] = []
    current: list[str] | None = None
    for position, segment in enumerate(segments, 1):
        name = segment[:3]
        if name == "MSH":
            current = [segment]
            messages.append(current)
        elif name in ENVELOPE_SEGMENTS:
            envelope.append(segment)
            current = None  # a trailer or header closes the message before it
        elif current is None:
            raise Er7Error(_orphan(segment, position, after=envelope[-1:]), "MSH")
        else:
            current.append(segment)
    return Batch(["\r".join(m) for m in messages], envelope)


def _orphan(segment: str, position: int, after: list[str]) -> str:
    if segment[:1] == "\x0b":
        return "the text still has its MLLP framing (0x0B start block); remove it first"
    where = f"right after {after[0][:3]} instead of a message header (MSH)" if after else (
        "before any message header (MSH)")
    return f"segment {position} ({segment[:3]!r}) came {where}"
