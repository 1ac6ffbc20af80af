"""MLLP: frames (0x0B ... 0x1C 0x0D) over TCP, and the asyncio listener that serves them.

Framing is a small state machine fed with bytes, testable without sockets. The listener
answers frames of one connection strictly in order (an A08 must not overtake the A04 that
came before it on the same connection) while connections run concurrently, which is what
lets the group committer put many connections' messages into one commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

__all__ = ["FramingError", "MllpDecoder", "MllpServer", "OversizeFrame", "frame"]

log = logging.getLogger(__name__)

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
        self._oversize = 0  # bytes beyond the kept head of an oversize frame

    @property
    def mid_frame(self) -> bool:
        return self._in_frame

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
        room = self._max - len(self._buffer)
        if self._oversize or len(chunk) > room:
            keep = max(0, min(len(chunk), _OVERSIZE_KEEP - len(self._buffer)))
            self._buffer += chunk[:keep]
            self._oversize += len(chunk) - keep
            return
        self._buffer += chunk

    def _finish(self) -> bytes | OversizeFrame:
        payload, oversize = bytes(self._buffer), self._oversize
        self._buffer.clear()
        self._in_frame, self._oversize = False, 0
        if oversize:
            return OversizeFrame(payload, len(payload) + oversize)
        return payload


FrameHandler = Callable[[bytes | OversizeFrame], Awaitable[list[bytes]]]


class _Connection(asyncio.Protocol):
    """One client: frames are queued and answered one after the other."""

    _PAUSE_AT = 64  # queued frames before we stop reading from a client that does not wait

    def __init__(self, handler: FrameHandler, max_frame_bytes: int, server: MllpServer) -> None:
        self._handler = handler
        self._decoder = MllpDecoder(max_frame_bytes)
        self._server = server
        self._pending: deque[bytes | OversizeFrame] = deque()
        self._transport: asyncio.Transport | None = None
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but offer the same methods.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, FramingError):
                log.warning("closing MLLP connection from %s: %s", self._peer, item.reason)
                self._close()
                return
            self._pending.append(item)
        if self._pending and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._answer())
        if len(self._pending) >= self._PAUSE_AT and self._transport and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._decoder.mid_frame:
            log.info("MLLP client %s disconnected in the middle of a frame", self._peer)
        self._server.connections.discard(self)
        self._transport = None

    async def _answer(self) -> None:
        try:
            while self._pending:
                replies = await self._handler(self._pending.popleft())
                if self._transport is None:
                    continue  # the client left; what was committed stays committed
                for reply in replies:
                    self._transport.write(frame(reply))
                if self._paused and len(self._pending) < self._PAUSE_AT // 2:
                    self._paused = False
                    self._transport.resume_reading()
        except Exception:
            log.exception("MLLP handler failed on a connection from %s; closing it", self._peer)
            self._close()
        finally:
            self._worker = None

    def _close(self) -> None:
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()


class MllpServer:
    """An asyncio MLLP listener; ``handler`` turns a frame into the frames to answer with."""

    def __init__(self, handler: FrameHandler, *, max_frame_bytes: int) -> None:
        self._handler = handler
        self._max = max_frame_bytes
        self._server: asyncio.Server | None = None
        self.connections: set[_Connection] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful when ``port`` is 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self._handler, self._max, self), host, port, reuse_address=True)
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listener on %s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                connection._close()
            await self._server.wait_closed()
            self._server = None
