"""An MLLP client for ``portalbridge send``: frames as the files hold them, answers collected.

Each connection sends one frame and waits for its acknowledgements before the next, so a
file's messages arrive in order; with several connections, files go out side by side, each
file on one connection. A connection that breaks, or an acknowledgement that does not come
within the timeout, is answered by reconnecting (with back-off, by tenacity) and sending the
unacknowledged frame again: the receiver's idempotency on MSH-10 makes that safe.

Which acknowledgements to wait for follows MSH-15 and MSH-16 as the receiver reads them
(original mode: one; enhanced mode: the accept and/or the application acknowledgement). When
a message asks for acknowledgements on a condition only (ER, SU), a short wait decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from inbound.hl7.files import Piece
from inbound.mllp import FramingError, MllpDecoder, frame

__all__ = ["Answer", "FileToSend", "MllpSender", "SendFailed"]

_SETTLE_SECONDS = 2.0  # how long to wait for an acknowledgement sent only on a condition
_MAX_ACK_BYTES = 16 * 1024 * 1024


class SendFailed(Exception):
    """The receiver cannot be reached at all."""


class _Broken(Exception):
    """This connection is no good any more: reconnect and send the frame again."""


@dataclass(frozen=True, slots=True)
class FileToSend:
    path: Path
    pieces: list[Piece]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said about one message: its code (``-`` when none was asked for,
    ``lost`` when none came after every attempt) and the reason it gave."""

    path: Path
    control_id: str
    code: str
    reason: str = ""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = MllpDecoder(_MAX_ACK_BYTES)
        self.frames: list[bytes] = []

    async def next_frame(self, timeout: float) -> bytes | None:
        """The next acknowledgement frame, or None if none came within ``timeout``."""
        while not self.frames:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
            except TimeoutError:
                return None
            if not data:
                raise _Broken("the receiver closed the connection")
            for item in self.decoder.feed(data):
                if isinstance(item, FramingError):
                    raise _Broken(f"the receiver broke the MLLP framing: {item.reason}")
                if isinstance(item, bytes):
                    self.frames.append(item)
        return self.frames.pop(0)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class MllpSender:
    """Sends files to an MLLP receiver and collects one ``Answer`` per message."""

    def __init__(self, host: str, port: int, *, connections: int = 1, timeout: float = 30.0,
                 attempts: int = 5, on_message: Callable[[Answer], None] | None = None) -> None:
        self._host, self._port = host, port
        self._connections = max(1, connections)
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._on_message = on_message or (lambda _answer: None)

    async def send(self, files: list[FileToSend]) -> list[Answer]:
        """Every file's messages, in order per file; raise ``SendFailed`` if no connection
        can be opened at all."""
        first = await self._connect_with_retries()
        queue: asyncio.Queue[tuple[int, FileToSend]] = asyncio.Queue()
        for number, item in enumerate(files):
            queue.put_nowait((number, item))
        results: dict[int, list[Answer]] = {}
        workers = [self._worker(queue, results, first if n == 0 else None)
                   for n in range(min(self._connections, max(1, len(files))))]
        await asyncio.gather(*workers)
        return [answer for number in sorted(results) for answer in results[number]]

    async def _connect_with_retries(self) -> _Connection:
        try:
            async for attempt in self._retrying():
                with attempt:
                    return await self._connect()
        except _Broken as exc:
            raise SendFailed(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), self._timeout)
        except (OSError, TimeoutError) as exc:
            raise _Broken(str(exc) or type(exc).__name__) from exc
        return _Connection(reader, writer)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_attempt(self._attempts),
                             wait=wait_exponential(multiplier=0.25, max=5),
                             retry=retry_if_exception_type(_Broken), reraise=True)

    async def _worker(self, queue: asyncio.Queue[tuple[int, FileToSend]],
                      results: dict[int, list[Answer]], connection: _Connection | None) -> None:
        holder: list[_Connection | None] = [connection]
        while not queue.empty():
            number, item = queue.get_nowait()
            answers: list[Answer] = []
            for piece in item.pieces:
                for answer in await self._deliver(holder, item.path, piece):
                    answers.append(answer)
                    self._on_message(answer)
            results[number] = answers
        if holder[0] is not None:
            await holder[0].close()

    async def _deliver(self, holder: list[_Connection | None], path: Path, piece: Piece) -> list[Answer]:
        """One frame, sent again on a new connection until it is acknowledged."""
        try:
            async for attempt in self._retrying():
                with attempt:
                    try:
                        connection = holder[0] or await self._connect()
                        holder[0] = connection
                        return await self._exchange(connection, path, piece)
                    except _Broken:
                        if holder[0] is not None:
                            await holder[0].close()
                        holder[0] = None
                        raise
        except _Broken as exc:
            return [Answer(path, _control_id(h), "lost", f"no acknowledgement after "
                           f"{self._attempts} attempts: {exc}") for h in piece.headers or (b"",)]
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True

    async def _exchange(self, connection: _Connection, path: Path, piece: Piece) -> list[Answer]:
        try:
            connection.writer.write(frame(piece.payload))
            await connection.writer.drain()
        except OSError as exc:
            raise _Broken(str(exc) or type(exc).__name__) from exc
        if piece.batch:
            reply = await connection.next_frame(self._timeout)
            if reply is None:
                raise _Broken(f"no acknowledgement within {self._timeout:g} s")
            return [Answer(path, control, code, reason) for control, code, reason in _read_acks(reply)]
        return [await self._answer_for(connection, path, header) for header in piece.headers or (b"",)]

    async def _answer_for(self, connection: _Connection, path: Path, header: bytes) -> Answer:
        wanted = _Wanted.of(header)
        final: tuple[str, str, str] | None = None
        while not wanted.done(final):
            reply = await connection.next_frame(self._timeout if wanted.certain(final) else _SETTLE_SECONDS)
            if reply is None:
                if wanted.certain(final):
                    raise _Broken(f"no acknowledgement within {self._timeout:g} s")
                break
            final = _read_acks(reply)[0]
        if final is None:
            return Answer(path, _control_id(header), "-", "no acknowledgement was asked for")
        return Answer(path, final[0] or _control_id(header), final[1], final[2])


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The acknowledgements a message asks for (MSH-15 accept, MSH-16 application)."""

    enhanced: bool
    accept: str
    application: str

    @classmethod
    def of(cls, header: bytes) -> _Wanted:
        fields = _fields(header)
        accept, application = (fields[i].strip().upper() if len(fields) > i else "" for i in (14, 15))
        return cls(bool(accept or application), accept or "AL", application or "NE")

    def done(self, last: tuple[str, str, str] | None) -> bool:
        if last is None:  # nothing came yet: done only if nothing was asked for
            return self.enhanced and self.accept == "NE" and self.application == "NE"
        code = last[1]
        if not self.enhanced or code.startswith("A"):
            return True
        ok = code == "CA"
        return (self.application == "NE" or (self.application == "ER" and ok)
                or (self.application == "SU" and not ok))

    def certain(self, last: tuple[str, str, str] | None) -> bool:
        """Whether an acknowledgement must still come, whatever the outcome."""
        if not self.enhanced:
            return True
        if last is None:
            return self.accept == "AL" or self.application == "AL"
        return self.application == "AL"


def _fields(msh: bytes) -> list[str]:
    """An MSH split on its field separator: MSH-n is ``fields[n - 1]``."""
    text = msh.decode("utf-8", errors="replace").lstrip("\ufeff")
    return text.split(text[3:4] or "|")


def _control_id(header: bytes) -> str:
    fields = _fields(header) if header else []
    return fields[9].strip() if len(fields) > 9 else ""


def _read_acks(reply: bytes) -> list[tuple[str, str, str]]:
    """(control id, code, reason) of each MSA in an acknowledgement (or a batch of them)."""
    text = reply.decode("utf-8", errors="replace")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s]
    separator = next((s[3:4] for s in segments if s.startswith(("MSH", "BHS"))), "|")
    found: list[tuple[str, str, str]] = []
    for segment in segments:
        fields = segment.split(separator)
        if fields[0] == "MSA":
            found.append((_at(fields, 2), _at(fields, 1), _at(fields, 3)))
        elif fields[0] == "ERR" and found:
            reason = _at(fields, 8) or _at(fields, 1)
            control, code, _ = found[-1]
            found[-1] = (control, code, reason or found[-1][2])
    return found or [("", "?", "the reply holds no MSA segment")]


def _at(fields: list[str], index: int) -> str:
    return fields[index] if len(fields) > index else ""
