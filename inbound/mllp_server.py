"""The asyncio MLLP listener, with every resource a client can take bounded.

Frames of one connection are answered strictly in order (an A08 must not overtake the A04
that came before it on the same connection) while connections run concurrently, which is
what lets the group committer put many connections' messages into one commit.

What a client can hold is bounded (``MllpLimits``), so that no sender, slow, idle, broken or
hostile, delays the others or grows the process:

- connections: beyond ``max_connections`` a new connection is closed at once, with a log line;
- time: a connection with nothing in flight and no byte for ``idle_timeout`` is closed; a frame
  not finished ``read_timeout`` after its start block is closed (a frame that never ends);
- memory: a connection stops being read while the frames it queued plus its unfinished frame
  reach ``connection_buffer_bytes`` (or ``max_queued_frames``), and again while it does not
  read its ACKs; across all connections, bytes held beyond ``total_buffer_bytes`` pause the
  connection that brought them, or close it when it has nothing queued to drain.

Nothing unacknowledged is lost by a close: a sender resends what got no ACK.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from engine.errors import ConfigurationError
from inbound.mllp import FramingError, MllpDecoder, OversizeFrame, frame, held_bytes

__all__ = ["FrameHandler", "MllpLimits", "MllpServer"]

log = logging.getLogger("inbound.mllp")

FrameHandler = Callable[[bytes | OversizeFrame], Awaitable[list[bytes]]]
_MIB = 1024 * 1024
_REFUSAL_LOG_EVERY = 10.0  # seconds between log lines about refused connections


@dataclass(frozen=True, slots=True, kw_only=True)
class MllpLimits:
    """What one listener lets its clients hold (settings ``PORTALBRIDGE_MLLP_*``)."""

    max_connections: int = 1000
    idle_timeout: float = 600.0  # seconds with nothing in flight and no byte received
    read_timeout: float = 60.0  # seconds from a frame's start block to its end block
    connection_buffer_bytes: int = 8 * _MIB  # queued frames + the unfinished one, per connection
    total_buffer_bytes: int = 256 * _MIB  # the same, over all connections
    max_queued_frames: int = 64  # frames read ahead of their ACKs, per connection


class MllpServer:
    """An asyncio MLLP listener; ``handler`` turns a frame into the frames to answer with."""

    def __init__(self, handler: FrameHandler, *, max_frame_bytes: int,
                 limits: MllpLimits | None = None) -> None:
        self.limits = limits or MllpLimits()
        if self.limits.connection_buffer_bytes < max_frame_bytes:
            raise ConfigurationError(
                f"PORTALBRIDGE_MLLP_CONNECTION_BUFFER_BYTES ({self.limits.connection_buffer_bytes}) "
                f"must be at least hl7.max_frame_bytes ({max_frame_bytes}): one frame must fit")
        self.handler = handler
        self.max_frame_bytes = max_frame_bytes
        self.connections: set[_Connection] = set()
        self.buffered_bytes = 0  # held by all connections: queued frames + unfinished ones
        self.refused_connections = 0
        self._unlogged_refusals = 0
        self._last_refusal_log = -_REFUSAL_LOG_EVERY
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful when ``port`` is 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                reuse_address=True)
        self._sweeper = loop.create_task(self._sweep())
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listener on %s:%d (at most %d connections)", host, bound,
                 self.limits.max_connections)
        return bound

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                connection.close()
            await self._server.wait_closed()
            self._server = None

    def admit(self, connection: _Connection) -> bool:
        """Take a new connection in, unless the listener already holds its maximum."""
        if len(self.connections) < self.limits.max_connections:
            self.connections.add(connection)
            return True
        self.refused_connections += 1
        now = time.monotonic()
        if now - self._last_refusal_log < _REFUSAL_LOG_EVERY:
            self._unlogged_refusals += 1  # one line per interval, not one per attacker's try
            return False
        more = f" ({self._unlogged_refusals} more refused since the last line)" \
            if self._unlogged_refusals else ""
        log.warning("refused an MLLP connection from %s: %d connections are open, the limit "
                    "(PORTALBRIDGE_MLLP_MAX_CONNECTIONS)%s", connection.peer,
                    len(self.connections), more)
        self._last_refusal_log, self._unlogged_refusals = now, 0
        return False

    async def _sweep(self) -> None:
        """Close connections past their idle or read deadline."""
        interval = min(1.0, max(0.02, min(self.limits.idle_timeout, self.limits.read_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            try:
                for connection in list(self.connections):
                    connection.check_deadlines(now)
            except Exception:  # a bug here must not end the sweeping
                log.exception("checking MLLP connection deadlines failed")


class _Connection(asyncio.Protocol):
    """One client: frames are queued and answered one after the other."""

    def __init__(self, server: MllpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._decoder = MllpDecoder(server.max_frame_bytes)
        self._pending: deque[bytes | OversizeFrame] = deque()
        self._queued_bytes = 0
        self._counted = 0  # this connection's share of ``server.buffered_bytes``
        self._transport: asyncio.Transport | None = None
        self._worker: asyncio.Task[None] | None = None
        self._handling = False  # our handler has a frame: the wait is ours, not the client's
        self._reading_paused = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._last_activity = 0.0
        self._frame_started: float | None = None
        self.peer = "?"

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self._server.admit(self):
            transport.close()
            return
        # uvloop's transports are not asyncio.Transport subclasses, but offer the same methods.
        self._transport = cast(asyncio.Transport, transport)
        self._last_activity = asyncio.get_running_loop().time()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        now = asyncio.get_running_loop().time()
        self._last_activity = now
        finished = False
        for item in self._decoder.feed(data):
            if isinstance(item, FramingError):
                log.warning("closing MLLP connection from %s: %s", self.peer, item.reason)
                self.close()
                return
            self._pending.append(item)
            self._queued_bytes += held_bytes(item)
            finished = True
        if not self._decoder.mid_frame:
            self._frame_started = None
        elif finished or self._frame_started is None:
            self._frame_started = now
        self._count()
        if self._pending and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._answer())
        self._hold_back()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # refused at the door
        if self._decoder.mid_frame:
            log.info("MLLP client %s disconnected in the middle of a frame", self.peer)
        self._transport = None
        self._forget()
        self._server.connections.discard(self)

    def pause_writing(self) -> None:
        self._can_write.clear()  # the client does not read its ACKs: stop answering it

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- limits ---------------------------------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        """Close this connection if it idled or left a frame unfinished for too long."""
        if self._transport is None or self._handling:
            return  # waiting for our handler is not the client's doing
        if self._reading_paused and self._can_write.is_set():
            return  # nor is waiting for us to work through what it queued
        started = self._frame_started
        if started is not None and now - started > self._limits.read_timeout:
            log.warning("closing MLLP connection from %s: a frame is still unfinished after "
                        "%.1f s (PORTALBRIDGE_MLLP_READ_TIMEOUT)", self.peer, now - started)
            self.close()
        elif started is None and now - self._last_activity > self._limits.idle_timeout:
            log.info("closing MLLP connection from %s: idle for %.1f s "
                     "(PORTALBRIDGE_MLLP_IDLE_TIMEOUT)", self.peer, now - self._last_activity)
            self.close()

    def _held(self) -> int:
        return self._queued_bytes + self._decoder.buffered

    def _count(self) -> None:
        held = self._held()
        self._server.buffered_bytes += held - self._counted
        self._counted = held

    def _over_own_limit(self) -> bool:
        return (self._held() >= self._limits.connection_buffer_bytes
                or len(self._pending) >= self._limits.max_queued_frames)

    def _hold_back(self) -> None:
        """Stop reading a client that holds too much; close it if nothing it holds can drain."""
        over_total = self._server.buffered_bytes > self._limits.total_buffer_bytes
        if over_total and not self._pending:
            log.warning("closing MLLP connection from %s: the listener holds %d bytes for its "
                        "clients, over PORTALBRIDGE_MLLP_TOTAL_BUFFER_BYTES", self.peer,
                        self._server.buffered_bytes)
            self.close()
        elif (over_total or self._over_own_limit()) and not self._reading_paused:
            self._set_reading(paused=True)

    def _release(self) -> None:
        """After a frame is answered: read again once enough has drained."""
        if not self._reading_paused or not self._can_write.is_set():
            return
        half_full = (self._held() * 2 >= self._limits.connection_buffer_bytes
                     or len(self._pending) * 2 >= self._limits.max_queued_frames)
        over_total = self._server.buffered_bytes > self._limits.total_buffer_bytes
        if not self._pending or not (half_full or over_total):
            self._set_reading(paused=False)

    def _set_reading(self, *, paused: bool) -> None:
        if self._transport is None:
            return
        self._reading_paused = paused
        if paused:
            self._transport.pause_reading()
            return
        self._transport.resume_reading()
        now = asyncio.get_running_loop().time()
        self._last_activity = now
        if self._frame_started is not None:
            self._frame_started = now  # the frame could not progress while we did not read

    # -- answering ------------------------------------------------------------------------

    async def _answer(self) -> None:
        try:
            while self._pending:
                item = self._pending[0]
                self._handling = True
                try:
                    replies = await self._server.handler(item)
                finally:
                    self._handling = False
                if self._transport is None or self._transport.is_closing():
                    return  # the client left or was closed; what was committed stays committed
                self._pending.popleft()
                self._queued_bytes -= held_bytes(item)
                self._count()
                for reply in replies:
                    self._transport.write(frame(reply))
                self._last_activity = asyncio.get_running_loop().time()
                await self._can_write.wait()
                self._release()
        except Exception:
            log.exception("MLLP handler failed on a connection from %s; closing it", self.peer)
            self.close()
        finally:
            self._worker = None

    def close(self) -> None:
        transport = self._transport
        self._forget()
        if transport is not None:
            transport.close()

    def _forget(self) -> None:
        """Drop what this connection holds (unanswered frames get no ACK: they are resent)."""
        self._pending.clear()
        self._queued_bytes = 0
        self._decoder = MllpDecoder(self._server.max_frame_bytes)
        self._count()
        self._can_write.set()  # a worker waiting to write must see the close and finish
