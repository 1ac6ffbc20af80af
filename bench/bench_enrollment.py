"""Automated bulk enrollment on PostgreSQL and RabbitMQ, beside references in the same run.

Timed from the moment ``portalbridge worker`` starts on a queue already holding the requests
until every reply has arrived and every ``member.enrolled`` event was published (confirmed)
by a ``portalbridge relay`` process and received by a pika consumer: request on the queue ->
committed -> reply -> event. The worker's resident memory is sampled every half second.

* bare broker: a pika consumer that answers each request and acks it, no database (the
  ceiling of the queue round trip on this machine);
* bare passphrase hashing: PBKDF2-SHA256 (65,536 iterations, 64-byte salt) of the same number
  of passphrases on a thread pool as wide as the machine, no broker or database: the goal
  for enrollment with a passphrase is 80% of this rate on the same cores.

Run: ``python bench/bench_enrollment.py`` (PostgreSQL and RabbitMQ as for the tests,
``rabbitmqctl`` for a scratch vhost). ``--requests``, ``--passphrase-requests`` and
``--memory-requests`` (100,000 for the constant-memory run) change the sizes; 0 skips a part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relay import scratch  # noqa: E402
from engine.bootstrap import build_runtime  # noqa: E402
from engine.broker import ENROLLMENT_QUEUE, STATUS_EXCHANGE  # noqa: E402
from engine.commands import MessageOrigin, UpsertPatientRecord  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.sql_uow import SqlUnitOfWork  # noqa: E402
from membership.passwords import Pbkdf2Sha256Hasher  # noqa: E402
from membership.tokens import SystemRandom  # noqa: E402
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey, Telecom  # noqa: E402
from tests.fakes import TEST_SECRET_KEY  # noqa: E402

PORTALBRIDGE = str(Path(sys.executable).with_name("portalbridge"))
RULES = """
version: 1
facilities: [{code: GHH, tier: 1, assigning_authority: GHH}]
routes: [{action: upsert_patient}]
events: {publish: [member.enrolled]}
"""
REPLIES, EVENTS = "bench.enrollment.replies", "bench.enrollment.events"


def seed_patients(database_url: str, config: Path, count: int, start: int = 0) -> None:
    """``count`` patients with an e-mail, 2,000 per transaction (not timed)."""
    runtime = build_runtime(Settings(database_url=database_url, config_path=config,
                                     secret_key=TEST_SECRET_KEY), migrate_sqlite=False)
    for first in range(start, start + count, 2000):
        commands = [_patient(n) for n in range(first, min(start + count, first + 2000))]
        with SqlUnitOfWork(runtime.database) as uow:
            runtime.bus.prefetch(commands, uow)
            for command in commands:
                runtime.bus.handle(command, uow)
            uow.commit()
    runtime.database.dispose()


def _patient(n: int) -> UpsertPatientRecord:
    values = {"identifiers": (Identifier(f"B{n}", "GHH", "MR"),),
              "emails": (Telecom("email", f"member{n}@example.org"),)}
    return UpsertPatientRecord(
        origin=MessageOrigin(channel="hl7", sender="BENCH", control_id=f"seed-{n}",
                             message_type="ADT^A04", facility="GHH"),
        key=RecordKey("GHH", "GHH", f"B{n}"),
        update=DemographicsUpdate(Demographics(**values), frozenset(values)))  # type: ignore[arg-type]


def publish_requests(amqp_url: str, first: int, count: int, passphrase: bool) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_declare(REPLIES, durable=False)
    channel.queue_purge(REPLIES)
    for n in range(first, first + count):
        body = {"request_id": f"bench-{n}", "identifier": f"GHH|B{n}", "enrolling_user": "BENCH"}
        if passphrase:
            body["passphrase"] = f"tidal-{n}-harbor"
        channel.basic_publish("", ENROLLMENT_QUEUE, json.dumps(body).encode(),
                              pika.BasicProperties(delivery_mode=2, reply_to=REPLIES,
                                                   correlation_id=f"c-{n}"))
    connection.close()


def declare(amqp_url: str) -> None:
    """The topology the engine declares, plus our reply queue and an events queue."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(STATUS_EXCHANGE, "topic", durable=True)
    channel.exchange_declare("portalbridge.dead", "topic", durable=True)
    channel.queue_declare(ENROLLMENT_QUEUE, durable=True, arguments={
        "x-queue-type": "quorum", "x-dead-letter-exchange": "portalbridge.dead", "x-delivery-limit": 5})
    channel.queue_declare(EVENTS, durable=True)
    channel.queue_bind(EVENTS, STATUS_EXCHANGE, "member.enrolled")
    channel.queue_purge(EVENTS)
    connection.close()


def wait_for(amqp_url: str, replies: int, events: int, timeout: float) -> tuple[int, int]:
    """Consume until ``replies`` replies and ``events`` events arrived (or the timeout)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=2000)
    seen = {"replies": 0, "events": 0}
    channel.basic_consume(REPLIES, lambda c, m, p, b: seen.__setitem__("replies", seen["replies"] + 1),
                          auto_ack=True)
    channel.basic_consume(EVENTS, lambda c, m, p, b: seen.__setitem__("events", seen["events"] + 1),
                          auto_ack=True)
    deadline = time.monotonic() + timeout
    while (seen["replies"] < replies or seen["events"] < events) and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.2)
    connection.close()
    return seen["replies"], seen["events"]


def consuming_since(amqp_url: str, timeout: float = 60.0) -> float:
    """The moment a consumer attached to the request queue (polled every 10 ms)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if channel.queue_declare(ENROLLMENT_QUEUE, passive=True).method.consumer_count:
                return time.perf_counter()
            time.sleep(0.01)
        raise SystemExit("the worker did not start consuming")
    finally:
        connection.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_engine(database_url: str, amqp_url: str, config: Path, count: int, timeout: float,
               writers: int) -> tuple[float, list[float], tuple[int, int]]:
    """Start relay and worker processes; seconds until all replies and events arrived."""
    env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": database_url, "PORTALBRIDGE_BROKER_URL": amqp_url,
           "PORTALBRIDGE_WRITERS": str(writers),
           "PORTALBRIDGE_CONFIG": str(config), "PORTALBRIDGE_SECRET_KEY": TEST_SECRET_KEY,
           "PORTALBRIDGE_LOG_LEVEL": "WARNING", "PORTALBRIDGE_RELAY_BATCH_SIZE": "1000"}
    relay = subprocess.Popen([PORTALBRIDGE, "relay"], env=env)
    worker = subprocess.Popen([PORTALBRIDGE, "worker"], env=env)
    started = consuming_since(amqp_url)  # the processes' start-up is not counted
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            if worker.poll() is None:
                samples.append(rss_mib(worker.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        got = wait_for(amqp_url, count, count, timeout)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        for process in (worker, relay):
            process.terminate()
            process.wait(30)
    return elapsed, samples, got


def bare_broker(amqp_url: str, count: int) -> float:
    """Requests answered and acked by a pika consumer with no database: seconds for ``count``."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=500)
    done = {"n": 0}

    def answer(ch: object, method: object, properties: pika.BasicProperties, body: bytes) -> None:
        request = json.loads(body)
        reply = json.dumps({"request_id": request["request_id"], "status": "accepted"}).encode()
        channel.basic_publish("", properties.reply_to, reply,
                              pika.BasicProperties(correlation_id=properties.correlation_id))
        channel.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
        done["n"] += 1

    started = time.perf_counter()
    channel.basic_consume(ENROLLMENT_QUEUE, answer)
    while done["n"] < count:
        connection.process_data_events(time_limit=0.1)
    elapsed = time.perf_counter() - started
    channel.queue_purge(REPLIES)
    connection.close()
    return elapsed


def bare_hashing(count: int) -> float:
    hasher = Pbkdf2Sha256Hasher(SystemRandom())
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(hasher.encode, (f"tidal-{n}-harbor" for n in range(count))))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--passphrase-requests", type=int, default=300)
    parser.add_argument("--memory-requests", type=int, default=0)
    parser.add_argument("--writers", default="1,2",
                        help="PORTALBRIDGE_WRITERS of the worker for the run without passphrase")
    args = parser.parse_args()
    writer_counts = [int(w) for w in args.writers.split(",")]
    rows: list[tuple[str, str]] = []
    with scratch() as (database_url, amqp_url):
        from engine.store.database import open_database

        database = open_database(database_url)
        upgrade(database)
        database.dispose()
        config = Path(f"/tmp/bench-enrollment-{os.getpid()}.yaml")
        config.write_text(RULES, encoding="utf-8")
        declare(amqp_url)
        first = 0
        runs = [*((f"without passphrase, {w} writer(s)", args.requests, False, w) for w in writer_counts),
                ("with passphrase", args.passphrase_requests, True, writer_counts[-1]),
                ("constant memory", args.memory_requests, False, writer_counts[-1])]
        for label, count, passphrase, writers in runs:
            if count <= 0:
                continue
            print(f"seeding {count} patients and queueing their requests ({label}) ...", flush=True)
            seed_patients(database_url, config, count, first)
            if passphrase:
                config.write_text(RULES + "membership: {passphrase: {use: required}}\n", encoding="utf-8")
            publish_requests(amqp_url, first, count, passphrase)
            elapsed, samples, got = run_engine(database_url, amqp_url, config, count,
                                               timeout=max(120.0, count / 50), writers=writers)
            config.write_text(RULES, encoding="utf-8")
            rate = count / elapsed
            rows.append((f"enrollment {label}, {count} requests",
                         f"{rate:,.0f}/s  (replies {got[0]}, events {got[1]})"))
            if samples:
                tenth = samples[max(0, len(samples) // 10 - 1)]
                rows.append(("  worker RSS MiB (first tenth / half / end / max)",
                             f"{tenth:.0f} / {samples[len(samples) // 2]:.0f} / {samples[-1]:.0f} / "
                             f"{max(samples):.0f}"))
            if passphrase:
                bare = count / bare_hashing(count)
                rows.append(("  bare passphrase hashing, same count", f"{bare:,.1f}/s -> enrollment at "
                             f"{100 * rate / bare:.0f}% (goal >= 80%)"))
            first += count
        if args.requests > 0:
            n = min(args.requests, 20_000)
            publish_requests(amqp_url, 10_000_000, n, False)
            rows.append((f"bare broker round trip (pika, no database), {n}",
                         f"{n / bare_broker(amqp_url, n):,.0f}/s"))
    print(f"\n{'measure':<58} result")
    for name, value in rows:
        print(f"{name:<58} {value}")


if __name__ == "__main__":
    main()
