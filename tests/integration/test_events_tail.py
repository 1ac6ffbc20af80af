"""The embedded default (SQLite + kombu's in-process broker) and ``portalbridge events tail``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import Engine

from engine.broker import STATUS_EXCHANGE
from engine.cli import main
from engine.domain.clock import SystemClock
from engine.store.database import open_database
from engine.store.migrate import upgrade
from outbound.factory import build_relay
from outbound.relay import RelayPolicy
from outbound.tail import follow_outbox, subscribe
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine
from tests.integration.relay_support import commit, interleaved, schema_for, statuses


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'portalbridge.db'}"
    engine = open_database(url)
    upgrade(engine)
    engine.dispose()
    return url


def wait_until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_publishes_to_the_in_process_broker_and_tail_shows_the_events(
        sqlite_file: str, rules_file: Path) -> None:
    # A consumer in the same process sees what the embedded relay publishes.
    memory = Connection("memory://")
    queue = Queue("test.embedded", Exchange(STATUS_EXCHANGE, "topic", durable=True), "#")
    queue(memory.channel()).declare()
    try:
        with running_engine(sqlite_file, rules_file,
                            frozenset({"listen", "api", "relay"})) as engine:
            database = engine.runtime.database
            client = MllpConnection(engine.mllp_port)
            for number in range(3):
                assert msa(client.exchange(adt(f"E-{number}", f"MRN-E{number}")))[1] == "AA"
            client.close()
            wait_until(lambda: statuses(database) == {"sent": 3})
            lines: list[str] = []
            follow_outbox(database, "urn:portalbridge", lines.append, threading.Event(), last=10,
                          count=3)
        published = []
        while (message := queue(memory.channel()).get(no_ack=True)) is not None:
            published.append(message.body.decode())
    finally:  # kombu's memory transport keeps a deleted queue's binding unless unbound
        bound = queue(memory.channel())
        bound.unbind_from(bound.exchange, "#")
        bound.delete()
        memory.release()
    assert lines == published  # the tail prints exactly what was published
    for line in lines:
        schema_for("mpi.changed").validate(json.loads(line))
    assert [json.loads(line)["data"]["source"]["control_id"] for line in lines] == [
        "E-0", "E-1", "E-2"]


def test_with_no_subscriber_events_are_kept_as_unrouted_and_tail_follows_new_ones(
        sqlite_file: str) -> None:
    database = open_database(sqlite_file)
    relay = build_relay(database, "memory://", SystemClock(), "urn:portalbridge", RelayPolicy())
    lines: list[str] = []
    stop = threading.Event()
    tail = threading.Thread(target=follow_outbox, args=(database, "urn:portalbridge",
                                                          lines.append, stop),
                            kwargs={"last": 0, "count": 4, "poll": 0.05})
    tail.start()
    try:
        first = interleaved(2, 1)
        commit(database, first)
        time.sleep(0.2)  # the tail has seen them pending
        relay.pump()
        second = interleaved(2, 1)
        commit(database, second)
        relay.pump()
        tail.join(10)
    finally:
        stop.set()
        database.dispose()
    assert [json.loads(line)["id"] for line in lines] == [e.event_id for e in first + second]
    assert relay.stats.unrouted == 4


def test_tail_subscribes_with_a_temporary_queue_on_rabbitmq(
        pg_engine: Engine, amqp_url: str) -> None:
    lines: list[str] = []
    ready, stop = threading.Event(), threading.Event()
    tail = threading.Thread(target=subscribe, args=(amqp_url, lines.append, stop),
                            kwargs={"count": 3, "on_ready": ready.set})
    tail.start()
    assert ready.wait(10)
    events = interleaved(3, 1)
    commit(pg_engine, events)
    relay = build_relay(pg_engine, amqp_url, SystemClock(), "urn:portalbridge", RelayPolicy())
    try:
        wait_until(lambda: relay.pump() == 0 and statuses(pg_engine) == {"sent": 3})
        tail.join(10)
    finally:
        stop.set()
        relay._publisher.close()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(e.event_id for e in events)


def test_cli_lists_counts_and_dead_rows_replays_them_and_tails(
        sqlite_file: str, rules_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORTALBRIDGE_DATABASE_URL", sqlite_file)
    monkeypatch.setenv("PORTALBRIDGE_CONFIG", str(rules_file))
    monkeypatch.delenv("PORTALBRIDGE_BROKER_URL", raising=False)
    database = open_database(sqlite_file)
    events = interleaved(3, 1)
    commit(database, events)
    with database.begin() as conn:
        conn.exec_driver_sql("UPDATE outbox SET status = 'dead', attempts = 8, "
                             "last_error = 'the broker refused the message (basic.nack)' "
                             "WHERE id <= 2")
    assert main(["outbox", "list", "--dead"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "outbox: 1 pending, 0 sent, 0 unrouted, 2 dead"
    assert [line.split("\t")[1] for line in listed[2:]] == [e.event_id for e in events[:2]]
    assert listed[2].endswith("the broker refused the message (basic.nack)")
    assert main(["outbox", "replay", events[0].event_id, "2"]) == 0
    assert capsys.readouterr().out.startswith("2 outbox row(s) pending again")
    assert statuses(database) == {"pending": 3}
    relay = build_relay(database, "memory://", SystemClock(), "urn:portalbridge", RelayPolicy())
    relay.pump()
    database.dispose()
    assert main(["events", "tail", "--last", "2", "--count", "2"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event["id"] for event in printed] == [e.event_id for e in events[1:]]
    assert main(["outbox", "replay"]) == 2  # nothing named: refused as given, like a usage error
