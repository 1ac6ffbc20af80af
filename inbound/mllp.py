"""MLLP framing: frames (0x0B ... 0x1C 0x0D) in a byte stream.

Framing is a small state machine fed with bytes, testable without sockets; the asyncio
listener that serves it over TCP is ``inbound.mllp_server``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FramingError", "MllpDecoder", "OversizeFrame", "frame", "held_bytes"]

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
_BETWEEN_FRAMES = b"\r\n\t "  # tolerated between frames; anything else is a framing error
_OVERSIZE_KEEP = 8192  # bytes kept of an oversize frame, enough to read its MSH for the AR


@dataclass(frozen=True, slots=True)
class FramingError:
    """The stream broke the MLLP rules; the connection should be closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame longer than the limit: its first bytes, kept so it can be rejected by name."""

    head: bytes
    size: int


def frame(payload: bytes) -> bytes:
    """``payload`` wrapped in MLLP start and end blocks."""
    return b"\x0b" + payload + b"\x1c\r"


class MllpDecoder:
    """Turns a byte stream into frames; ``feed`` returns what became complete."""

    def __init__(self, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._size = 0  # bytes of the current frame, kept or not

    @property
    def mid_frame(self) -> bool:
        return self._in_frame

    @property
    def buffered(self) -> int:
        """Bytes of the unfinished frame held in memory (at most the limit, or the kept head)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | OversizeFrame | FramingError]:
        out: list[bytes | OversizeFrame | FramingError] = []
        view, position = memoryview(data), 0
        while position < len(view):
            if not self._in_frame:
                start = data.find(START_BLOCK, position)
                junk = data[position:start if start >= 0 else len(data)]
                if junk.strip(_BETWEEN_FRAMES):
                    out.append(FramingError(f"{len(junk)} bytes outside an MLLP frame"))
                    return out
                if start < 0:
                    return out
                self._in_frame, position = True, start + 1
                continue
            end = data.find(END_BLOCK, position)
            chunk = view[position:end if end >= 0 else len(view)]
            self._take(chunk)
            if end < 0:
                return out
            out.append(self._finish())
            position = end + 1
            if position < len(view) and view[position] == CARRIAGE_RETURN:
                position += 1
        return out

    def _take(self, chunk: memoryview) -> None:
        self._size += len(chunk)
        if self._size <= self._max:
            self._buffer += chunk
            return
        # Past the limit only the head is kept: an oversize frame costs 8 KiB, not its size.
        if len(self._buffer) > _OVERSIZE_KEEP:
            del self._buffer[_OVERSIZE_KEEP:]
        room = _OVERSIZE_KEEP - len(self._buffer)
        if room > 0:
            self._buffer += chunk[:room]

    def _finish(self) -> bytes | OversizeFrame:
        payload, size = bytes(self._buffer), self._size
        self._buffer.clear()
        self._in_frame, self._size = False, 0
        if size > self._max:
            return OversizeFrame(payload, size)
        return payload


def held_bytes(item: bytes | OversizeFrame) -> int:
    """Bytes a decoded frame holds in memory (an oversize frame keeps only its head)."""
    return len(item.head) if isinstance(item, OversizeFrame) else len(item)
