"""HL7 v2 files cut into what goes into one MLLP frame, each piece exactly as stored.

A file may hold one message, several, an FHS/BHS batch, or frames already (0x0B ... 0x1C
0x0D). Nothing is rewritten: no line ending is changed, no byte-order mark dropped, no
delimiter touched. The pieces laid end to end are the file (framed files: each frame's
bytes; what lies between frames, CR/LF, is not sent).

- A batch file (it starts with FHS or BHS) is one frame: the receiver answers it with one
  batch of acknowledgements.
- An already-framed file is sent frame by frame, as its frames are.
- Otherwise each message (from one ``MSH`` at the start of a line to the next) is a frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inbound.mllp import MllpDecoder

__all__ = ["Piece", "pieces_of"]

_BOM = b"\xef\xbb\xbf"
#: An MSH that starts a segment: at the start of the text or after CR or LF.
_MESSAGE_START = re.compile(rb"(?:(?<=\r)|(?<=\n)|^)MSH")


@dataclass(frozen=True, slots=True)
class Piece:
    """The bytes of one frame and what the receiver will answer about."""

    payload: bytes  # exactly as stored, without MLLP framing
    headers: tuple[bytes, ...]  # the MSH segment of each message inside, for control ids and modes
    batch: bool  # an FHS/BHS batch: answered by one batch acknowledgement


def pieces_of(data: bytes) -> list[Piece]:
    """``data`` (a file's bytes) as frames to send; [] if it holds no message."""
    if data.lstrip(b"\r\n\t ").startswith(b"\x0b"):
        frames = MllpDecoder(len(data) + 1).feed(data.lstrip(b"\r\n\t "))
        return [_piece(f) for f in frames if isinstance(f, bytes) and f.strip()]
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    if body.lstrip(b"\r\n\t ").startswith((b"FHS", b"BHS")):
        return [_piece(data)]
    starts = [m.start() + (len(data) - len(body)) for m in _MESSAGE_START.finditer(body)]
    if not starts:
        return [_piece(data)] if data.strip() else []
    starts[0] = 0  # a BOM or blank lines before the first MSH travel with it
    ends = [*starts[1:], len(data)]
    return [_piece(data[start:end]) for start, end in zip(starts, ends, strict=True)]


def _piece(payload: bytes) -> Piece:
    body = payload[len(_BOM):] if payload.startswith(_BOM) else payload
    headers = tuple(body[m.start():_line_end(body, m.start())] for m in _MESSAGE_START.finditer(body))
    return Piece(payload, headers, body.lstrip(b"\r\n\t ").startswith((b"FHS", b"BHS")))


def _line_end(text: bytes, start: int) -> int:
    ends = [i for i in (text.find(b"\r", start), text.find(b"\n", start)) if i >= 0]
    return min(ends) if ends else len(text)
