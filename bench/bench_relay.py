"""Relay throughput: committed outbox rows (PostgreSQL) to broker confirms (RabbitMQ).

Side by side in one run, on the same broker, queue and event bodies:

* raw pika: the ceiling, an asynchronous pika publisher with windowed publisher confirms
  (bodies prepared in memory, no database);
* the relay: ``outbound.Relay`` with its PostgreSQL claims (advisory-locked partitions,
  ``FOR UPDATE SKIP LOCKED``), CloudEvent bodies, py-amqp windowed confirms, and the rows
  marked sent only after their confirms; timed from committed rows to all rows sent;
* two relay processes sharing the partitions.

Run: ``python bench/bench_relay.py`` (needs PostgreSQL and RabbitMQ as for the tests, and
``rabbitmqctl`` for a scratch vhost). ``--events N`` changes the run size.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
from sqlalchemy import Engine, create_engine, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.domain.clock import SystemClock  # noqa: E402
from engine.store.database import open_database  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.tables import outbox  # noqa: E402
from outbound.factory import build_relay  # noqa: E402
from outbound.outbox_store import row_from  # noqa: E402
from outbound.relay import RelayPolicy  # noqa: E402
from outbound.status_events import to_message  # noqa: E402
from tests.integration.relay_support import interleaved, sequences  # noqa: E402

ADMIN_URL = os.environ.get("PORTALBRIDGE_TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SOURCE = "urn:portalbridge:bench"
SINK = "bench.sink"
WINDOW = 1000


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def scratch() -> Iterator[tuple[str, str]]:
    """A PostgreSQL database and a RabbitMQ vhost of their own, removed afterwards."""
    name = f"pb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def prepare_broker(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare("portalbridge.status", "topic", durable=True)
    channel.queue_declare(SINK, durable=True)
    channel.queue_bind(SINK, "portalbridge.status", "#")
    channel.queue_purge(SINK)
    connection.close()


def commit_rows(database: Engine, events: int) -> None:
    """``events`` committed mpi.changed rows for 1,000 patients (not timed)."""
    messages = interleaved(subjects=1000, per_subject=max(1, events // 1000))[:events]
    numbers = sequences(messages)
    rows = [{"event_id": m.event_id, "routing_key": m.routing_key, "subject": m.subject,
             "sequence": numbers[m.event_id], "correlation_id": m.correlation_id,
             "occurred_at": m.occurred_at, "data": _json(m.data)} for m in messages]
    with database.begin() as conn:
        conn.execute(text("TRUNCATE outbox RESTART IDENTITY"))
        for start in range(0, len(rows), 5000):
            conn.execute(insert(outbox), rows[start:start + 5000])
    with database.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE outbox"))


def _json(data: object) -> str:
    import json

    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def raw_pika(amqp_url: str, database: Engine) -> float:
    """Seconds for pika to publish the same events with windowed confirms (bodies in memory)."""
    with database.connect() as conn:
        messages = [to_message(row_from(r), SOURCE) for r in conn.execute(
            select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.subject,
                   outbox.c.sequence, outbox.c.correlation_id, outbox.c.occurred_at,
                   outbox.c.data, outbox.c.attempts, outbox.c.status, outbox.c.last_error))]
    state = {"sent": 0, "confirmed": 0, "start": 0.0, "end": 0.0}
    tags: deque[int] = deque()  # delivery tags waiting for a confirm, ascending

    def publish_more(channel: pika.channel.Channel) -> None:
        while state["sent"] < len(messages) and state["sent"] - state["confirmed"] < WINDOW:
            message = messages[int(state["sent"])]
            state["sent"] += 1
            tags.append(int(state["sent"]))
            channel.basic_publish("portalbridge.status", message.routing_key, message.body,
                                  pika.BasicProperties(
                                      delivery_mode=2, content_type=message.content_type,
                                      message_id=message.message_id,
                                      correlation_id=message.correlation_id,
                                      headers=message.headers),
                                  mandatory=True)

    def on_confirm(frame: pika.frame.Method) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        before = len(tags)
        if multiple:
            while tags and tags[0] <= tag:
                tags.popleft()
        else:
            tags.remove(tag)
        state["confirmed"] += before - len(tags)
        if state["confirmed"] >= len(messages):
            state["end"] = time.perf_counter()
            connection.close()
        else:
            publish_more(channel_ref[0])

    channel_ref: list[pika.channel.Channel] = []

    def on_channel(channel: pika.channel.Channel) -> None:
        channel_ref.append(channel)
        channel.confirm_delivery(on_confirm)
        state["start"] = time.perf_counter()
        publish_more(channel)

    connection = pika.SelectConnection(
        pika.URLParameters(amqp_url),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_close_callback=lambda c, _e: c.ioloop.stop())
    connection.ioloop.start()
    return state["end"] - state["start"]


def relay_until_sent(database_url: str, amqp_url: str, batch_size: int) -> None:
    database = open_database(database_url)
    relay = build_relay(database, amqp_url, SystemClock(), SOURCE, RelayPolicy(batch_size=batch_size))
    idle = 0
    while idle < 8:  # two sweeps of the partitions found nothing left
        idle = 0 if relay.pump() else idle + 1
    relay._publisher.close()
    database.dispose()


def timed_relays(database_url: str, amqp_url: str, processes: int, batch_size: int) -> float:
    start = time.perf_counter()
    if processes == 1:
        relay_until_sent(database_url, amqp_url, batch_size)
    else:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=relay_until_sent,
                                   args=(database_url, amqp_url, batch_size))
                   for _ in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return time.perf_counter() - start


def sent(database: Engine) -> int:
    with database.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'sent'")).scalar() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=1000, help="relay rows per claim")
    args = parser.parse_args()
    results: list[tuple[str, float]] = []
    with scratch() as (database_url, amqp_url):
        database = open_database(database_url)
        upgrade(database)
        prepare_broker(amqp_url)
        commit_rows(database, args.events)
        results.append(("raw pika, windowed confirms (ceiling)", raw_pika(amqp_url, database)))
        for processes in (1, 2):
            prepare_broker(amqp_url)
            commit_rows(database, args.events)
            seconds = timed_relays(database_url, amqp_url, processes, args.batch_size)
            assert sent(database) == args.events, "the relay left rows unsent"
            label = "relay, 1 process" if processes == 1 else f"relay, {processes} processes"
            results.append((f"{label} (PostgreSQL -> confirms)", seconds))
        database.dispose()
    ceiling = args.events / results[0][1]
    print(f"\n{args.events} events of {len(_sample_body())} bytes, persistent, mandatory, "
          f"one durable queue bound; relay batch {args.batch_size}, confirm window {WINDOW}\n")
    print(f"| {'path':<46} | {'seconds':>7} | {'events/s':>8} | {'of raw':>6} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 10}|{'-' * 8}|")
    for label, seconds in results:
        rate = args.events / seconds
        print(f"| {label:<46} | {seconds:7.2f} | {rate:8.0f} | {rate / ceiling:6.0%} |")


def _sample_body() -> bytes:
    message = interleaved(1, 1)[0]
    from outbound.ports import OutboxRow

    row = OutboxRow(id=1, event_id=message.event_id, routing_key=message.routing_key,
                    subject=message.subject, sequence=1, correlation_id="c",
                    occurred_at=message.occurred_at, data=_json(message.data))
    return to_message(row, SOURCE).body


if __name__ == "__main__":
    main()
