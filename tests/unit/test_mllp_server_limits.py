"""The MLLP listener's bounds, on loopback sockets, with a frame handler of our own.

The handler stands in for the receiver (the listener's one port, ``FrameHandler``); it can be
held, so a test decides when frames are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engine.errors import ConfigurationError
from inbound.mllp import MllpDecoder, OversizeFrame, frame
from inbound.mllp_server import MllpLimits, MllpServer


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (fixtures are passed through)."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


class HeldHandler:
    """Answers each frame with ``ACK:<frame>`` once released."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.released.set()
        self.seen = 0

    async def __call__(self, payload: bytes | OversizeFrame) -> list[bytes]:
        await self.released.wait()
        self.seen += 1
        body = payload.head if isinstance(payload, OversizeFrame) else payload
        return [b"ACK:" + body[:20]]


@asynccontextmanager
async def listening(handler: HeldHandler, limits: MllpLimits,
                    max_frame_bytes: int = 10_000) -> AsyncIterator[tuple[MllpServer, int]]:
    server = MllpServer(handler, max_frame_bytes=max_frame_bytes, limits=limits)
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, port
    finally:
        await server.stop()


async def exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame(payload))
        return await read_frame(reader, timeout)
    finally:
        writer.close()


async def read_frame(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """The next whole frame (frames that came in the same read wait for the next call)."""
    decoder, ready = _readers.setdefault(id(reader), (MllpDecoder(1_000_000), []))
    while not ready:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            raise ConnectionError("closed by the listener")
        ready += [f for f in decoder.feed(data) if isinstance(f, bytes)]
    return ready.pop(0)


_readers: dict[int, tuple[MllpDecoder, list[bytes]]] = {}


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the listener closed this connection within ``seconds`` (reading what comes)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:  # reset, or a write of ours already failed on the closed socket
        return True
    return True


def test_a_connection_buffer_smaller_than_a_frame_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="MLLP_CONNECTION_BUFFER_BYTES"):
        MllpServer(HeldHandler(), max_frame_bytes=10_000,
                   limits=MllpLimits(connection_buffer_bytes=9_999))


@in_loop
async def test_connections_over_the_maximum_are_closed_at_once_with_one_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    handler = HeldHandler()
    async with listening(handler, MllpLimits(max_connections=3)) as (server, port):
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for reader, _ in extra:
            assert await closed_within(reader, 2.0)
        assert server.refused_connections == 5
        refusals = [r for r in caplog.records if "refused an MLLP connection" in r.getMessage()]
        assert len(refusals) == 1  # one line per interval, not one per refused connection
        for reader, writer in kept:  # the first three are still served
            writer.write(frame(b"MSH|ok"))
            assert await read_frame(reader) == b"ACK:MSH|ok"
        kept[0][1].close()
        await asyncio.sleep(0.1)
        assert await exchange(port, b"MSH|after") == b"ACK:MSH|after"  # a freed place is taken


@in_loop
async def test_a_client_that_does_not_wait_is_paused_within_its_byte_budget() -> None:
    handler = HeldHandler()
    handler.released.clear()
    limits = MllpLimits(connection_buffer_bytes=20_000, max_queued_frames=1000)
    async with listening(handler, limits) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = b"MSH|" + b"x" * 996
        writer.write(frame(payload) * 2000)  # 2 MB, far over the connection's budget
        await asyncio.sleep(0.5)
        # Read up to the budget (plus what one read brings), then paused: the rest waits
        # in the kernel's socket buffers, where it slows the sender and not us.
        assert 20_000 <= server.buffered_bytes <= 20_000 + 300_000
        other = await asyncio.wait_for(asyncio.shield(_released_exchange(handler, port)), 5)
        assert other == b"ACK:MSH|other"
        for _ in range(2000):
            assert (await read_frame(reader)).startswith(b"ACK:MSH|xxx")
        writer.close()
    assert handler.seen == 2001


async def _released_exchange(handler: HeldHandler, port: int) -> bytes:
    handler.released.set()  # the paused client's frames and this one are answered in turn
    return await exchange(port, b"MSH|other")


@in_loop
async def test_bytes_over_the_listener_budget_close_the_connection_that_brought_them(
        caplog: pytest.LogCaptureFixture) -> None:
    handler = HeldHandler()
    limits = MllpLimits(connection_buffer_bytes=10_000, total_buffer_bytes=25_000)
    async with listening(handler, limits) as (server, port):
        first = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for _, writer in first:
            writer.write(b"\x0bMSH|" + b"y" * 9_000)  # unfinished frames: 18 KB held
        await asyncio.sleep(0.2)
        third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
        third_writer.write(b"\x0bMSH|" + b"z" * 9_000)  # 27 KB: over the listener's budget
        assert await closed_within(third_reader, 2.0)
        assert "over PORTALBRIDGE_MLLP_TOTAL_BUFFER_BYTES" in caplog.text
        assert server.buffered_bytes <= 25_000
        assert await exchange(port, b"MSH|small") == b"ACK:MSH|small"  # others go on
        first[0][1].write(b"\x1c\r")  # the held frames can still be finished
        assert await read_frame(first[0][0]) == b"ACK:MSH|" + b"y" * 16


@in_loop
async def test_an_oversize_frame_costs_its_head_only() -> None:
    handler = HeldHandler()
    async with listening(handler, MllpLimits(), max_frame_bytes=10_000) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0bMSH|" + b"w" * 2_000_000)
        await asyncio.sleep(0.3)
        assert server.buffered_bytes <= 8192
        writer.write(b"\x1c\r")
        assert await read_frame(reader) == b"ACK:MSH|" + b"w" * 16
        writer.close()


@in_loop
async def test_idle_and_never_ending_connections_are_closed_while_a_busy_one_is_answered(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="inbound.mllp")
    handler = HeldHandler()
    limits = MllpLimits(idle_timeout=0.6, read_timeout=0.6)
    async with listening(handler, limits) as (_, port):
        idle_reader, _ = await asyncio.open_connection("127.0.0.1", port)
        endless_reader, endless_writer = await asyncio.open_connection("127.0.0.1", port)
        endless_writer.write(b"\x0bMSH|never ends")
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = 0
        while loop.time() - started < 1.5:  # a frame every 0.1 s, trickling the endless one
            busy_writer.write(frame(b"MSH|busy"))
            assert await read_frame(busy_reader) == b"ACK:MSH|busy"
            answers += 1
            with contextlib.suppress(ConnectionError):  # until the listener closes it
                endless_writer.write(b"x")  # bytes keep coming, the frame never ends
            await asyncio.sleep(0.1)
        assert answers >= 10
        assert await closed_within(idle_reader, 0.1)
        assert await closed_within(endless_reader, 0.1)
        assert not await closed_within(busy_reader, 0.1)
    assert "idle for" in caplog.text and "PORTALBRIDGE_MLLP_IDLE_TIMEOUT" in caplog.text
    assert "a frame is still unfinished" in caplog.text


@in_loop
async def test_a_connection_waiting_for_its_ack_is_not_idle() -> None:
    handler = HeldHandler()
    handler.released.clear()
    async with listening(handler, MllpLimits(idle_timeout=0.3)) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(b"MSH|slow database"))
        assert not await closed_within(reader, 1.0)  # the wait is ours, not the client's
        handler.released.set()
        assert await read_frame(reader) == b"ACK:MSH|slow database"
        assert await closed_within(reader, 1.5)  # and now it idles
