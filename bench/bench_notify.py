"""Notification e-mail throughput: one sender to a local SMTP server, beside raw smtplib.

Side by side in one run, against the same server process on loopback:

* raw smtplib: the ceiling, ``SMTP.sendmail`` of one prebuilt message over one connection;
* portalbridge: ``build_sender(smtp://...)`` sending activation-token notifications, each
  rendered from its templates (subject, text, HTML; dates localised), composed as
  multipart/alternative and sent over the sender's kept connection: one ``send`` at a time,
  and ``send_batch`` of each chunk (rendering the next message while the server answers);
* the notifier (``portalbridge notifier``'s loop): the same notifications as rows of a
  PostgreSQL database (tokens sealed, as the membership writes them), claimed ``FOR UPDATE
  SKIP LOCKED`` in batches of 100, opened, rendered, sent and marked sent (each batch's
  results committed on the notifier's second thread while the next batch is sent, as
  ``portalbridge notifier`` runs). Each chunk's rows are committed before its timing starts.

Two servers are measured, each in its own process so that client and server do not share
an interpreter: aiosmtpd (the test suite's server) and a minimal asyncio SMTP sink that
only answers the commands, to show whether aiosmtpd itself is what limits the rate.
Raw and ours are timed in alternating chunks of messages, so that both see the same load of
a shared machine; the rates are totals over all chunks.

Run: ``python bench/bench_notify.py`` (PostgreSQL on 127.0.0.1 for the notifier path,
``PORTALBRIDGE_BENCH_POSTGRES``; ``--no-notifier`` without it). ``--messages N``, ``--chunk N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import smtplib
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import create_database, free_port  # noqa: E402
from engine.domain.clock import SystemClock  # noqa: E402
from engine.notification_rules import NotificationRules  # noqa: E402
from engine.notifications import Notification  # noqa: E402
from outbound.notify import build_sender  # noqa: E402

RULES = NotificationRules.model_validate({
    "from": "Good Health Portal <no-reply@portal.example.org>", "site_name": "Good Health Portal",
    "time_zone": "America/New_York", "activation_url": "https://portal.example.org/activate"})
TOKEN = "Q4WX-8PLM-3RTZ-K9VB-2HND-7CJF"


# -- servers (each runs in a child process) ---------------------------------------------------


async def _sink_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n")
        elif verb == b"DATA":
            writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
            await reader.readuntil(b"\r\n.\r\n")
            writer.write(b"250 OK queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 OK\r\n")
        await writer.drain()
    writer.close()


def _run_sink(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.start_server(_sink_session, "127.0.0.1", port, limit=1 << 22)
        await server.serve_forever()

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve())


class _Discard:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK queued"


def _run_aiosmtpd(port: int) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    while True:
        time.sleep(3600)


@contextlib.contextmanager
def server(target: Callable[[int], None]) -> Iterator[int]:
    port = free_port()
    process = multiprocessing.Process(target=target, args=(port,), daemon=True)
    process.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.05)
    try:
        yield port
    finally:
        process.terminate()
        process.join(5)


# -- clients -----------------------------------------------------------------------------------


def notification(number: int) -> Notification:
    return Notification(id=f"bench-{number}", kind="activation_token", channel="email",
                        recipient=f"member{number}@example.org", carrier=None, locale="en-US",
                        member_id=f"mem-{number}", created_at=datetime.now(UTC),
                        context={"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00"})


class RawSmtplib:
    """Bare smtplib over one connection, sending one prebuilt message (same size as ours)."""

    def __init__(self, port: int) -> None:
        self.data = _sample_bytes()
        self.smtp = smtplib.SMTP("127.0.0.1", port)
        self.smtp.ehlo()

    def run(self, numbers: range) -> float:
        started = time.perf_counter()
        for number in numbers:
            self.smtp.sendmail("no-reply@portal.example.org", [f"member{number}@example.org"], self.data)
        return time.perf_counter() - started

    def close(self) -> None:
        self.smtp.quit()


class Portalbridge:
    """The notification sender: render, compose and send each notification."""

    def __init__(self, port: int) -> None:
        self.sender = build_sender(f"smtp://127.0.0.1:{port}", RULES)
        self.sender.send(notification(-1))  # connect and compile the templates before timing

    def run(self, numbers: range) -> float:
        notifications = [notification(n) for n in numbers]
        started = time.perf_counter()
        for item in notifications:
            self.sender.send(item)
        return time.perf_counter() - started

    def run_batch(self, numbers: range) -> float:
        notifications = [notification(n) for n in numbers]
        started = time.perf_counter()
        outcomes = self.sender.send_batch(notifications)
        elapsed = time.perf_counter() - started
        assert not any(outcomes), outcomes
        return elapsed

    def close(self) -> None:
        self.sender.close()


class NotifierLoop:
    """The notifier over a PostgreSQL database: rows in, claimed, sent, marked sent."""

    def __init__(self, port: int, database_url: str) -> None:
        from sqlalchemy import delete

        from engine.secretbox import AesGcmBox
        from engine.store.database import open_database
        from engine.store.migrate import upgrade
        from engine.store.tables import notifications
        from outbound.notify.notifier import Notifier

        self.database = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
        upgrade(self.database)
        self.box = AesGcmBox(bytes(range(32)))
        self.sender = build_sender(f"smtp://127.0.0.1:{port}", RULES)
        self.notifier = Notifier(self.database, self.sender, self.box, SystemClock())
        self.store(range(-100, 0))  # connect, compile the templates and warm the pool
        while self.notifier.pump():
            pass
        with self.database.begin() as conn:
            conn.execute(delete(notifications))

    def store(self, numbers: range) -> None:
        from sqlalchemy import insert

        from engine.store.members_sql import notification_row
        from engine.store.tables import notifications

        rows = [notification_row(replace(notification(n), id=str(uuid.uuid4()),
                                         secrets=frozenset({"token"})), self.box) for n in numbers]
        with self.database.begin() as conn:
            conn.execute(insert(notifications), rows)

    def run(self, numbers: range) -> float:
        self.store(numbers)
        started = time.perf_counter()
        sent = 0
        while claimed := self.notifier.start_batch():  # as ``portalbridge notifier`` runs
            sent += claimed
        self.notifier.finish()
        elapsed = time.perf_counter() - started
        assert sent == len(numbers) and self.notifier.failed == 0, (sent, self.notifier.failed)
        return elapsed

    def close(self) -> None:
        self.notifier.close()
        self.sender.close()
        self.database.dispose()


def _sample_bytes() -> bytes:
    from outbound.notify import NotificationRenderer, Sender, compose_email

    sample = notification(0)
    rendered = NotificationRenderer(RULES).email(sample.kind, sample.locale, sample.context)
    return compose_email(sample, Sender.parse(RULES.from_address), subject=rendered.subject,
                         text=rendered.text, html=rendered.html, locale=rendered.locale,
                         sent_at=datetime.now(UTC)).data


def measure(port: int, messages: int, chunk: int, database_url: str | None) -> dict[str, float]:
    """Rates of raw smtplib, of ``send`` one by one, of ``send_batch`` and of the notifier,
    timed in alternating chunks so that all see the same moments of a shared machine's load."""
    raw, ours = RawSmtplib(port), Portalbridge(port)
    loop = NotifierLoop(port, database_url) if database_url else None
    times = dict.fromkeys(("raw", "send", "send_batch", "notifier"), 0.0)
    for start in range(0, messages, chunk):
        numbers = range(start, min(start + chunk, messages))
        times["raw"] += raw.run(numbers)
        times["send"] += ours.run(numbers)
        times["send_batch"] += ours.run_batch(numbers)
        if loop is not None:
            times["notifier"] += loop.run(numbers)
    raw.close()
    ours.close()
    if loop is not None:
        loop.close()
    return {path: messages / seconds for path, seconds in times.items() if seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--chunk", type=int, default=250, help="messages per alternating chunk")
    parser.add_argument("--no-notifier", action="store_true", help="leave out the notifier path "
                        "(it needs PostgreSQL)")
    args = parser.parse_args()
    size = len(_sample_bytes())
    print(f"{args.messages} activation-token e-mails of {size} bytes per path, one connection each, "
          f"timed in alternating chunks of {args.chunk}; loopback, {multiprocessing.cpu_count()} cores")
    print(f"{'server':<24}{'path':<40}{'e-mails/s':>11}{'of raw':>9}")
    labels = {"raw": "raw smtplib (prebuilt message)", "send": "portalbridge send (rendered)",
              "send_batch": "portalbridge send_batch (rendered)",
              "notifier": "notifier (PostgreSQL rows -> sent)"}
    database_url, drop = (None, None) if args.no_notifier else create_database("pb_bench_notify")
    try:
        for name, target in (("aiosmtpd", _run_aiosmtpd), ("asyncio sink (minimal)", _run_sink)):
            with server(target) as port:
                rates = measure(port, args.messages, args.chunk, database_url)
            for number, (path, rate) in enumerate(rates.items()):
                print(f"{name if number == 0 else '':<24}{labels[path]:<40}{rate:>11,.0f}"
                      f"{rate / rates['raw']:>9.0%}")
    finally:
        if drop is not None:
            drop()


if __name__ == "__main__":
    main()
