"""Notification e-mail throughput: one sender to a local SMTP server, beside raw smtplib.

Side by side in one run, against the same server process on loopback:

* raw smtplib: the ceiling, ``SMTP.sendmail`` of one prebuilt message over one connection;
* portalbridge: ``build_sender(smtp://...)`` sending activation-token notifications, each
  rendered from its templates (subject, text, HTML; dates localised), composed as
  multipart/alternative and sent over the sender's kept connection: one ``send`` at a time,
  and ``send_batch`` of each chunk (rendering the next message while the server answers).

Two servers are measured, each in its own process so that client and server do not share
an interpreter: aiosmtpd (the test suite's server) and a minimal asyncio SMTP sink that
only answers the commands, to show whether aiosmtpd itself is what limits the rate.
Raw and ours are timed in alternating chunks of messages, so that both see the same load of
a shared machine; the rates are totals over all chunks.

Run: ``python bench/bench_notify.py`` (no services needed). ``--messages N``, ``--chunk N``.
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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import free_port  # noqa: E402
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


def _sample_bytes() -> bytes:
    from outbound.notify import NotificationRenderer, Sender, compose_email

    sample = notification(0)
    rendered = NotificationRenderer(RULES).email(sample.kind, sample.locale, sample.context)
    return compose_email(sample, Sender.parse(RULES.from_address), subject=rendered.subject,
                         text=rendered.text, html=rendered.html, locale=rendered.locale,
                         sent_at=datetime.now(UTC)).data


def measure(port: int, messages: int, chunk: int) -> tuple[float, float, float]:
    """Rates of raw smtplib, of ``send`` one by one and of ``send_batch``, timed in
    alternating chunks so that all three see the same moments of a shared machine's load."""
    raw, ours = RawSmtplib(port), Portalbridge(port)
    raw_time = one_time = batch_time = 0.0
    for start in range(0, messages, chunk):
        numbers = range(start, min(start + chunk, messages))
        raw_time += raw.run(numbers)
        one_time += ours.run(numbers)
        batch_time += ours.run_batch(numbers)
    raw.close()
    ours.close()
    return messages / raw_time, messages / one_time, messages / batch_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--chunk", type=int, default=250, help="messages per alternating chunk")
    args = parser.parse_args()
    size = len(_sample_bytes())
    print(f"{args.messages} activation-token e-mails of {size} bytes per path, one connection each, "
          f"timed in alternating chunks of {args.chunk}; loopback, {multiprocessing.cpu_count()} cores")
    print(f"{'server':<24}{'path':<34}{'e-mails/s':>11}{'of raw':>9}")
    for name, target in (("aiosmtpd", _run_aiosmtpd), ("asyncio sink (minimal)", _run_sink)):
        with server(target) as port:
            raw, one, batch = measure(port, args.messages, args.chunk)
        print(f"{name:<24}{'raw smtplib (prebuilt message)':<34}{raw:>11,.0f}{'100%':>9}")
        print(f"{'':<24}{'portalbridge send (rendered)':<34}{one:>11,.0f}{one / raw:>9.0%}")
        print(f"{'':<24}{'portalbridge send_batch (rendered)':<34}{batch:>11,.0f}{batch / raw:>9.0%}")


if __name__ == "__main__":
    main()
