"""The relay against the real RabbitMQ and the real databases, with pika as the downstream."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from sqlalchemy import Engine, select

from engine.blocking import Background
from engine.broker import SEQUENCE_HEADER
from engine.domain.clock import SystemClock
from engine.store.tables import outbox
from outbound.factory import build_relay
from outbound.relay import Relay, RelayPolicy
from tests.integration.conftest import rabbitmqctl
from tests.integration.relay_support import (
    Downstream,
    commit,
    interleaved,
    mpi_changed,
    schema_for,
    sequences,
    statuses,
)

SOURCE = "urn:portalbridge:test"


def new_relay(engine: Engine, url: str, **policy: float) -> Relay:
    settings = {"batch_size": 200, "backoff_initial": 0.05, "backoff_max": 0.5,
                "poll_interval": 0.05} | policy
    return build_relay(engine, url, SystemClock(), SOURCE, RelayPolicy(**settings))  # type: ignore[arg-type]


def pump_until_idle(relay: Relay, engine: Engine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while statuses(engine).get("pending") and time.monotonic() < deadline:
        relay.pump()


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_events_reach_a_pika_subscriber_as_valid_cloudevents(
        relay_database: Engine, amqp_url: str, downstream: Downstream) -> None:
    queue = downstream.bind("mpi.changed")
    events = interleaved(subjects=3, per_subject=4)
    commit(relay_database, events)
    relay = new_relay(relay_database, amqp_url)
    try:
        pump_until_idle(relay, relay_database)
    finally:
        relay._publisher.close()
    received = downstream.take(queue, len(events))
    by_id = {e.event_id: e for e in events}
    assert sorted(r.properties.message_id for r in received) == sorted(by_id)
    for subject in {e.subject for e in events}:  # commit order holds per patient
        assert ([r.headers[SEQUENCE_HEADER] for r in received if r.event["subject"] == subject]
                == [1, 2, 3, 4])
    validator = schema_for("mpi.changed")
    numbers = sequences(events)
    for message in received:
        event = by_id[message.properties.message_id]
        validator.validate(message.event)
        assert message.event["id"] == event.event_id and message.event["source"] == SOURCE
        assert message.event["type"] == "org.portalbridge.mpi.changed.v1"
        assert message.event["subject"] == event.subject
        assert message.properties.correlation_id == event.correlation_id
        assert message.properties.delivery_mode == 2
        assert message.properties.content_type == "application/cloudevents+json; charset=utf-8"
        assert message.headers[SEQUENCE_HEADER] == numbers[event.event_id]
        assert message.routing_key == "mpi.changed"
    assert statuses(relay_database) == {"sent": len(events)}


def test_events_no_queue_is_bound_for_are_marked_unrouted(
        pg_engine: Engine, amqp_url: str, downstream: Downstream) -> None:
    queue = downstream.bind("mpi.changed")
    commit(pg_engine, [*interleaved(2, 1), *interleaved(2, 1, key="member.activated")])
    relay = new_relay(pg_engine, amqp_url)
    try:
        pump_until_idle(relay, pg_engine)
    finally:
        relay._publisher.close()
    assert statuses(pg_engine) == {"sent": 2, "unrouted": 2}
    with pg_engine.connect() as conn:
        unrouted = set(conn.execute(select(outbox.c.routing_key)
                                    .where(outbox.c.status == "unrouted")).scalars())
    assert unrouted == {"member.activated"}
    assert len(downstream.take(queue, 2)) == 2


def test_relay_keeps_rows_while_the_broker_refuses_and_delivers_them_when_it_returns(
        pg_engine: Engine, amqp_url: str, rabbitmq_vhost: str, downstream: Downstream) -> None:
    queue = downstream.bind("#")
    relay = new_relay(pg_engine, amqp_url)
    job = Background("relay", relay.run)
    job.start()
    try:
        commit(pg_engine, interleaved(5, 2))
        wait_for(lambda: statuses(pg_engine) == {"sent": 10})
        # Cut it for real: the broker refuses our user on the vhost and drops its connections.
        rabbitmqctl("clear_permissions", "-p", rabbitmq_vhost, "guest")
        rabbitmqctl("close_all_connections", "--vhost", rabbitmq_vhost, "test: broker outage")
        later = interleaved(5, 1)
        commit(pg_engine, [mpi_changed(e.subject, f"{e.correlation_id}-3") for e in later])
        time.sleep(1.5)
        assert statuses(pg_engine) == {"sent": 10, "pending": 5}
        assert relay.stats.outages >= 1 and job.alive
        with pg_engine.connect() as conn:
            assert set(conn.execute(select(outbox.c.attempts)
                                    .where(outbox.c.status == "pending")).scalars()) == {0}
    finally:
        rabbitmqctl("set_permissions", "-p", rabbitmq_vhost, "guest", ".*", ".*", ".*")
    try:
        wait_for(lambda: statuses(pg_engine) == {"sent": 15})
    finally:
        job.stop()
    downstream.reconnect()
    received = downstream.take(queue, 15)
    assert len({r.properties.message_id for r in received}) == 15


def test_two_relays_deliver_every_event_exactly_once_and_in_order_per_patient(
        pg_engine: Engine, amqp_url: str, downstream: Downstream) -> None:
    queue = downstream.bind("#")
    events = interleaved(subjects=60, per_subject=50)  # 3,000 events
    relays = [new_relay(pg_engine, amqp_url), new_relay(pg_engine, amqp_url)]
    jobs = [Background(f"relay-{n}", r.run) for n, r in enumerate(relays)]
    for job in jobs:
        job.start()
    writer = threading.Thread(target=commit, args=(pg_engine, events, 100))
    writer.start()  # the relays claim while the rows are still being committed
    try:
        writer.join(60)
        wait_for(lambda: statuses(pg_engine) == {"sent": len(events)}, timeout=60)
    finally:
        for job in jobs:
            job.stop()
    received = downstream.take(queue, len(events))
    received += downstream.take(queue, 1, timeout=0.5)  # no copy follows
    ids = [r.properties.message_id for r in received]
    assert len(ids) == len(events) and set(ids) == {e.event_id for e in events}
    seen: dict[str, list[int]] = defaultdict(list)
    for message in received:
        seen[message.event["subject"]].append(message.headers[SEQUENCE_HEADER])
    assert all(sequences == list(range(1, 51)) for sequences in seen.values()), seen
    assert all(r.stats.sent > 0 for r in relays), [r.stats.sent for r in relays]


def test_refused_events_die_after_max_attempts_and_replay_delivers_them(
        pg_engine: Engine, amqp_url: str, downstream: Downstream) -> None:
    full = downstream.bind("mpi.changed", arguments={"x-max-length": 0,
                                                     "x-overflow": "reject-publish"})
    commit(pg_engine, interleaved(2, 2))
    relay = new_relay(pg_engine, amqp_url, max_attempts=2, row_retry_initial=0.0)
    try:
        deadline = time.monotonic() + 20
        while statuses(pg_engine) != {"dead": 4} and time.monotonic() < deadline:
            relay.pump()  # a claim looks at a quarter of the partitions
        assert statuses(pg_engine) == {"dead": 4}
        with pg_engine.connect() as conn:
            rows = conn.execute(select(outbox.c.attempts, outbox.c.last_error)).all()
        assert {(a, e) for a, e in rows} == {(2, "the broker refused the message (basic.nack)")}
        downstream.channel.queue_delete(full)
        queue = downstream.bind("mpi.changed")
        from outbound.outbox_admin import replay

        assert replay(pg_engine, all_dead=True) == 4
        pump_until_idle(relay, pg_engine)
    finally:
        relay._publisher.close()
    assert statuses(pg_engine) == {"sent": 4}
    assert len(downstream.take(queue, 4)) == 4


@pytest.mark.parametrize("batch_size", [1, 7])
def test_claims_hold_back_a_patients_later_events_while_an_earlier_one_waits(
        relay_database: Engine, amqp_url: str, downstream: Downstream, batch_size: int) -> None:
    queue = downstream.bind("mpi.changed")
    events = interleaved(subjects=2, per_subject=3)  # p0:1, p1:1, p0:2, p1:2, p0:3, p1:3
    commit(relay_database, events)
    relay = new_relay(relay_database, amqp_url, batch_size=batch_size)
    first = events[0]
    with relay_database.begin() as conn:  # p0's first event waits for a retry
        from datetime import UTC, datetime, timedelta

        conn.execute(outbox.update().where(outbox.c.event_id == first.event_id)
                     .values(next_attempt_at=datetime.now(UTC) + timedelta(seconds=2),
                             attempts=1))
    try:
        for _ in range(12):  # three sweeps of the partitions
            relay.pump()
        got = downstream.take(queue, 3, timeout=5)
        assert [(m.event["subject"], m.headers[SEQUENCE_HEADER]) for m in got] == [
            ("patient-0001", 1), ("patient-0001", 2), ("patient-0001", 3)]
        time.sleep(2.1)
        pump_until_idle(relay, relay_database)
    finally:
        relay._publisher.close()
    rest = downstream.take(queue, 3)
    assert [m.headers[SEQUENCE_HEADER] for m in rest] == [1, 2, 3]
    assert {m.event["subject"] for m in rest} == {"patient-0000"}


def test_a_refused_event_holds_back_the_later_events_of_its_patient_in_the_same_claim(
        relay_database: Engine, amqp_url: str, downstream: Downstream) -> None:
    downstream.bind("mpi.changed", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    events = interleaved(subjects=2, per_subject=3)
    commit(relay_database, events)
    relay = new_relay(relay_database, amqp_url, row_retry_initial=60.0)
    try:
        for _ in range(8):  # two sweeps of the partitions: every row was claimed
            relay.pump()
    finally:
        relay._publisher.close()
    with relay_database.connect() as conn:
        attempts = dict(conn.execute(select(outbox.c.event_id, outbox.c.attempts)).all())
    numbers = sequences(events)
    # The broker refused each patient's first event; its later ones were never published.
    assert sorted((numbers[event_id], tries) for event_id, tries in attempts.items()) == [
        (1, 1), (1, 1), (2, 0), (2, 0), (3, 0), (3, 0)]
    assert statuses(relay_database) == {"pending": 6}
