"""examples/subscriber.py, as a downstream team runs it, against events the relay publishes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from engine.domain.clock import SystemClock
from outbound.factory import build_relay
from outbound.outbox_admin import replay
from outbound.relay import RelayPolicy
from tests.integration.relay_support import Downstream, commit, interleaved, statuses

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"


def test_the_example_subscriber_prints_each_event_once(
        pg_engine: Engine, amqp_url: str, downstream: Downstream) -> None:
    queue = f"example.{time.monotonic_ns()}"
    process = subprocess.Popen([sys.executable, EXAMPLE, "--url", amqp_url, "--queue", queue,
                                "--bind", "mpi.changed"], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        downstream.wait_for_consumer(queue)
        events = interleaved(2, 2)
        commit(pg_engine, events)
        relay = build_relay(pg_engine, amqp_url, SystemClock(), "urn:portalbridge", RelayPolicy())
        while statuses(pg_engine).get("pending"):
            relay.pump()
        replay(pg_engine, [events[0].event_id])  # a duplicate the subscriber must drop
        while statuses(pg_engine).get("pending"):
            relay.pump()
        relay._publisher.close()
        deadline = time.monotonic() + 15
        while len(lines) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(10)
        reader.join(5)
        downstream.channel.queue_delete(queue)
    assert len(lines) == 4, lines
    assert sorted(line.split("id=")[1].strip() for line in lines) == sorted(e.event_id for e in events)
    assert all(line.startswith("org.portalbridge.mpi.changed.v1 subject=patient-") for line in lines)
