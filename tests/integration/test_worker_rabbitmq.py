"""``portalbridge worker``: HL7 v2 over AMQP against the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from engine.background import EngineThread
from engine.blocking import Background
from engine.bootstrap import build_runtime
from engine.broker import DEAD_LETTER_QUEUE, HL7_QUEUE, DeadLetterHeaders
from engine.config import Settings
from engine.errors import EngineError, TransientFailure
from engine.journal import JournalEntry, JournalQuery
from engine.store.database import open_database
from engine.store.migrate import upgrade
from inbound.amqp_worker import Hl7QueueWorker, WorkerPolicy
from tests.conftest import POSTGRES_ADMIN_URL
from tests.fakes import TEST_SECRET_KEY
from tests.integration.conftest import rabbitmqctl
from tests.integration.engine_harness import adt, msa
from tests.integration.relay_support import Downstream, schema_for


@pytest.fixture
def engine_thread(pg_engine: Engine, postgres_url: str, amqp_url: str,
                  rules_file: Path) -> Iterator[EngineThread]:
    settings = Settings(
        secret_key=TEST_SECRET_KEY, database_url=postgres_url, broker_url=amqp_url, config_path=rules_file)
    thread = EngineThread(build_runtime(settings), frozenset({"worker", "relay"}))
    with thread:
        yield thread
    thread.runtime.database.dispose()


def journaled(thread: EngineThread, control_id: str, count: int) -> list[JournalEntry]:
    """The journal's entries of ``control_id``, oldest first, once ``count`` are written."""
    deadline = time.monotonic() + 10
    while True:
        found = thread.runtime.messages.query(JournalQuery(control_id=control_id), payloads=True)
        if len(found) >= count or time.monotonic() > deadline:
            return [record.entry for record in reversed(found)]
        time.sleep(0.05)


def ask(downstream: Downstream, body: bytes, correlation_id: str) -> str:
    downstream.wait_for_consumer(HL7_QUEUE)
    replies = downstream.reply_queue()
    downstream.publish(HL7_QUEUE, body, reply_to=replies, correlation_id=correlation_id,
                       content_type="x-application/hl7-v2+er7")
    return replies


def test_an_hl7_message_is_applied_answered_and_announced(
        engine_thread: EngineThread, downstream: Downstream) -> None:
    events = downstream.bind("mpi.changed")
    replies = ask(downstream, adt("W-1", "MRN-W1"), "req-1")
    [reply] = downstream.take(replies, 1)
    assert msa(reply.body)[1:3] == ["AA", "W-1"]
    assert reply.properties.correlation_id == "req-1"
    [event] = downstream.take(events, 1)
    schema_for("mpi.changed").validate(event.event)
    assert event.properties.correlation_id == "W-1"
    again = ask(downstream, adt("W-1", "MRN-W1"), "req-2")  # a resend: acknowledged, not applied
    [second] = downstream.take(again, 1)
    assert msa(second.body)[1] == "AA" and second.properties.correlation_id == "req-2"
    assert downstream.take(events, 1, timeout=1.0) == []
    assert downstream.count(HL7_QUEUE) == 0 and downstream.count(DEAD_LETTER_QUEUE) == 0
    first_entry, resend = journaled(engine_thread, "W-1", 2)
    assert (first_entry.channel, first_entry.outcome, resend.outcome) == ("amqp", "AA", "AA")
    assert first_entry.payload == adt("W-1", "MRN-W1") and first_entry.response == reply.body
    assert (first_entry.effects["status"], resend.effects["status"]) == ("applied", "duplicate")


def test_poison_messages_end_in_the_dead_letter_queue_with_their_reason(
        engine_thread: EngineThread, downstream: Downstream) -> None:
    garbage = b"this is not an HL7 message"
    oru = adt("W-2", "MRN-W2").replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01")
    first, second = ask(downstream, garbage, "bad-1"), ask(downstream, oru, "bad-2")
    dead = downstream.take(DEAD_LETTER_QUEUE, 2)
    assert [d.body for d in dead] == [garbage, oru]
    by_error = {d.headers[DeadLetterHeaders.ERROR]: d for d in dead}
    assert set(by_error) == {"Er7Error", "UnroutableMessage"}
    unroutable = by_error["UnroutableMessage"].headers
    assert unroutable[DeadLetterHeaders.REASON] == "ADT only"
    assert unroutable[DeadLetterHeaders.LOCATION] == "MSH-9"
    assert unroutable[DeadLetterHeaders.QUEUE] == HL7_QUEUE
    assert by_error["Er7Error"].headers[DeadLetterHeaders.REASON]
    assert by_error["Er7Error"].properties.correlation_id == "bad-1"
    assert msa(downstream.take(first, 1)[0].body)[1] == "AR"
    assert msa(downstream.take(second, 1)[0].body)[1] == "AR"
    assert downstream.count(HL7_QUEUE) == 0
    [refused] = journaled(engine_thread, "W-2", 1)
    assert (refused.channel, refused.outcome, refused.error_code) == ("amqp", "AR", "200")
    assert refused.payload == oru


@pytest.fixture
def own_database() -> Iterator[tuple[str, Engine]]:
    """A database of this test's own, so that it can be taken away from the engine."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pb_outage_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = open_database(url)
    upgrade(engine)
    engine.dispose()
    yield name, admin
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          f"WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def test_a_database_outage_pauses_consumption_instead_of_dead_lettering(
        own_database: tuple[str, Engine], amqp_url: str, rules_file: Path,
        downstream: Downstream) -> None:
    name, admin = own_database
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(
        secret_key=TEST_SECRET_KEY, database_url=url, broker_url=amqp_url, config_path=rules_file)
    with EngineThread(build_runtime(settings), frozenset({"worker"})):
        with admin.connect() as conn:  # the database goes away
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE datname = '{name}'"))
        replies = ask(downstream, adt("W-3", "MRN-W3"), "req-3")
        assert downstream.take(replies, 1, timeout=2.5) == []  # held: no AE, no dead letter
        assert downstream.count(DEAD_LETTER_QUEUE) == 0
        with admin.connect() as conn:  # and comes back
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        [reply] = downstream.take(replies, 1, timeout=30)
    assert msa(reply.body)[1:3] == ["AA", "W-3"]
    assert downstream.count(DEAD_LETTER_QUEUE) == 0 and downstream.count(HL7_QUEUE) == 0


def test_a_message_that_keeps_failing_is_dead_lettered_by_the_delivery_limit(
        amqp_url: str, downstream: Downstream) -> None:
    tries = 0

    async def always_failing(_body: bytes) -> tuple[list[bytes], EngineError | None]:
        nonlocal tries
        tries += 1
        return [], TransientFailure("internal error (KeyError)")

    worker = Hl7QueueWorker(amqp_url, always_failing,
                            WorkerPolicy(retry_initial=0.01, retry_max=0.02, internal_retries=2))
    job = Background("worker", worker.run)
    job.start()
    try:
        downstream.wait_for_consumer(HL7_QUEUE)
        downstream.publish(HL7_QUEUE, b"MSH|crashes the worker", message_id="poison-1")
        [dead] = downstream.take(DEAD_LETTER_QUEUE, 1, timeout=30)
    finally:
        job.stop()
    assert dead.body == b"MSH|crashes the worker"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert tries >= 2 * 5  # in-place tries on each of the broker's deliveries


def test_the_worker_needs_rabbitmq(postgres_url: str, rules_file: Path) -> None:
    settings = Settings(
        secret_key=TEST_SECRET_KEY, database_url=postgres_url, config_path=rules_file)
    thread = EngineThread(build_runtime(settings), frozenset({"worker"}))
    thread.start()
    with pytest.raises(RuntimeError, match="PORTALBRIDGE_BROKER_URL"):
        thread.wait_ready(10)
    thread.join(10)


def test_the_worker_reconnects_after_the_broker_drops_it(
        engine_thread: EngineThread, downstream: Downstream, rabbitmq_vhost: str) -> None:
    [before] = downstream.take(ask(downstream, adt("W-5", "MRN-W5"), "req-5"), 1)
    assert msa(before.body)[1] == "AA"
    rabbitmqctl("close_all_connections", "--vhost", rabbitmq_vhost, "test: broker restart")
    downstream.reconnect()
    [after] = downstream.take(ask(downstream, adt("W-6", "MRN-W6"), "req-6"), 1)
    assert msa(after.body)[1:3] == ["AA", "W-6"]
