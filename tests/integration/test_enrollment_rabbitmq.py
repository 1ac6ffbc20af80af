"""Automated enrollment on PostgreSQL and RabbitMQ: an ADT with an e-mail enrolls through the
request queue, external requests get replies, the mailed token activates the account, the
events reach a pika consumer, and the audit log has the rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from engine.broker import DEAD_LETTER_QUEUE, ENROLLMENT_QUEUE, DeadLetterHeaders
from engine.store.tables import audit_log
from tests.integration.engine_harness import MllpConnection, RunningEngine, msa, running_engine
from tests.integration.membership_support import (
    ENROLL_RULES,
    member_of,
    registration,
    token_in,
    wait_for_mail,
)
from tests.integration.relay_support import Downstream, schema_for

COMPONENTS = frozenset({"listen", "api", "relay", "enrollment", "notifier"})


@pytest.fixture
def engine(pg_engine: Engine, postgres_url: str, amqp_url: str,
           tmp_path: Path) -> Iterator[tuple[RunningEngine, Path]]:
    rules = tmp_path / "routing.yaml"
    rules.write_text(ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n"
                                          "  password: {iterations: 1000}"), encoding="utf-8")
    mail = tmp_path / "mail"
    with running_engine(postgres_url, rules, COMPONENTS, broker_url=amqp_url,
                        mail_url=f"file://{mail}") as running:
        yield running, mail


def _ask(downstream: Downstream, body: bytes, correlation_id: str, **extra: str) -> list[dict[str, object]]:
    downstream.wait_for_consumer(ENROLLMENT_QUEUE)
    replies = downstream.reply_queue()
    downstream.publish(ENROLLMENT_QUEUE, body, reply_to=replies, correlation_id=correlation_id,
                       content_type="application/json", **extra)
    received = downstream.take(replies, 1)
    assert received and received[0].properties.correlation_id == correlation_id
    return [json.loads(r.body) for r in received]


def test_adt_enrolls_through_the_queue_and_the_token_activates(
        engine: tuple[RunningEngine, Path], downstream: Downstream, pg_engine: Engine) -> None:
    running, mail = engine
    events = downstream.bind("member.*")
    conn = MllpConnection(running.mllp_port)
    assert msa(conn.exchange(registration("Q1", "8001")))[1] == "AA"
    assert msa(conn.exchange(registration("Q2", "8002", trigger="A08")))[1] == "AA"  # no enroll route
    conn.close()
    [enrolled] = downstream.take(events, 1)
    schema_for("member.enrolled").validate(enrolled.event)
    assert enrolled.routing_key == "member.enrolled"
    assert enrolled.event["data"]["identifiers"][0]["value"] == "8001"

    [reply] = _ask(downstream, json.dumps({"request_id": "ext-1", "identifier": "GHH|8002",
                                           "enrolling_user": "EMR-BATCH"}).encode(), "c-1")
    assert reply["status"] == "accepted" and reply["membership_status"] == "pending"
    [again] = _ask(downstream, json.dumps({"request_id": "ext-1", "identifier": "GHH|8002"}).encode(),
                   "c-2")
    assert again["status"] == "duplicate" and again["member_id"] == reply["member_id"]
    [member_again] = _ask(downstream, json.dumps({"identifier": "GHH|8001"}).encode(), "c-3",
                          message_id="m-3")
    assert member_again["status"] == "rejected" and "already a pending member" in member_again["reason"]

    files = wait_for_mail(mail, "activation_token", count=2)
    token = next(token_in(p) for p in files if member_of(p) == enrolled.event["subject"])
    with httpx.Client(base_url=running.http, timeout=15) as http:
        done = http.post("/portal/activation", json={
            "token": token, "fields": {"ssn": "123-45-6789", "mothers_maiden_name": "Smith"},
            "username": "queue.member", "password": "Quiet4rivers"})
        assert done.status_code == 200, done.text
    activated = [e for e in downstream.take(events, 2) if e.routing_key == "member.activated"]
    assert len(activated) == 1
    schema_for("member.activated").validate(activated[0].event)
    with pg_engine.connect() as c:
        actions = [r[0] for r in c.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions.count("member.enroll") == 2 and "member.activate" in actions


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not JSON"),
    (b'{"identifier": "GHH|none"}', "no patient in the MPI"),
    (b'{"identifier": "GHH|1", "colour": "blue"}', "unknown key"),
])
def test_bad_requests_are_answered_and_dead_lettered_never_requeued(
        engine: tuple[RunningEngine, Path], downstream: Downstream, body: bytes, reason: str) -> None:
    [reply] = _ask(downstream, body, "bad-1", message_id="bad-message")
    assert reply["status"] == "rejected" and reason in reply["reason"]
    [dead] = downstream.take(DEAD_LETTER_QUEUE, 1)
    assert dead.body == body
    assert reason in dead.headers[DeadLetterHeaders.REASON]
    assert dead.headers[DeadLetterHeaders.QUEUE] == ENROLLMENT_QUEUE
    assert downstream.count(ENROLLMENT_QUEUE) == 0
