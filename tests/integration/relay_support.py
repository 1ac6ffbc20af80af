"""Helpers for the relay and worker tests: committing outbox rows, a pika downstream client."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pika
from jsonschema import Draft202012Validator
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import Engine, select

from engine.broker import DEAD_LETTER_QUEUE, INBOUND_QUEUES, STATUS_EXCHANGE
from engine.domain.events import MpiRecordChanged
from engine.store.sql_uow import SqlUnitOfWork
from engine.store.tables import outbox
from engine.uow import OutboxMessage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def mpi_changed(subject: str, control_id: str, *, created: bool = False) -> OutboxMessage:
    event = MpiRecordChanged(
        subject=subject, occurred_at=T0, correlation_id=control_id,
        identifiers=({"value": subject.upper(), "authority": "GHH", "type": "MR"},),
        changes={"birth_date": ("", "1980-01-02")}, winner_facility="GHH", winner_tier=1,
        created=created, merged_into=None, merged_from=(),
        source={"channel": "hl7", "sender": "EMR^GHH", "message_type": "ADT^A08",
                "control_id": control_id, "facility": "GHH"})
    return OutboxMessage(event_id=str(uuid.uuid4()), routing_key=event.routing_key,
                         subject=subject, correlation_id=control_id,
                         occurred_at=T0, data=event.data())


def commit(engine: Engine, messages: Iterable[OutboxMessage], per_commit: int = 200) -> None:
    """Write outbox rows through the unit of work, ``per_commit`` rows a transaction."""
    pending = list(messages)
    for start in range(0, len(pending), per_commit):
        uow = SqlUnitOfWork(engine)
        for message in pending[start:start + per_commit]:
            uow.outbox.add(message)
        uow.commit()


def interleaved(subjects: int, per_subject: int, key: str = "mpi.changed") -> list[OutboxMessage]:
    """``per_subject`` events of each subject, subjects taking turns (committed in this order,
    they are numbered 1, 2, ... per subject: see ``sequences``)."""
    return [replace(mpi_changed(f"patient-{number:04d}", f"C{number}-{sequence}",
                                created=sequence == 1), routing_key=key)
            for sequence in range(1, per_subject + 1) for number in range(subjects)]


def sequences(messages: Iterable[OutboxMessage]) -> dict[str, int]:
    """Event id -> the sequence number the store gives it when ``messages`` are committed in
    this order on an empty outbox."""
    counts: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for message in messages:
        counts[message.subject] = counts.get(message.subject, 0) + 1
        numbers[message.event_id] = counts[message.subject]
    return numbers


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        counts: dict[str, int] = {}
        for (status,) in conn.execute(select(outbox.c.status)):
            counts[status] = counts.get(status, 0) + 1
    return counts


def schema_for(routing_key: str) -> Draft202012Validator:
    text = (resources.files("engine") / "schemas" / f"{routing_key}.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text), format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class Received:
    properties: pika.BasicProperties
    body: bytes
    routing_key: str

    @property
    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


class Downstream:
    """What a downstream team does with pika: its own queues, bound to our exchanges."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._queues: list[str] = []
        self._connect()

    def _connect(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel: BlockingChannel = self.connection.channel()

    def reconnect(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError):  # the broker may have closed it
            self.connection.close()
        self._connect()

    def bind(self, binding: str = "#", arguments: dict[str, Any] | None = None) -> str:
        """A durable queue of our own bound to the status exchange."""
        self.channel.exchange_declare(STATUS_EXCHANGE, "topic", durable=True)
        name = f"downstream.{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(name, durable=True, arguments=arguments)
        self.channel.queue_bind(name, STATUS_EXCHANGE, binding)
        self._queues.append(name)
        return name

    def reply_queue(self) -> str:
        name = f"replies.{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(name, durable=False, auto_delete=False)
        self._queues.append(name)
        return name

    def take(self, queue: str, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait for ``count`` messages (acking each); fewer if ``timeout`` passes."""
        received: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.02)
                continue
            received.append(Received(properties, body, method.routing_key))
        return received

    def wait_for_consumer(self, queue: str, timeout: float = 15.0) -> None:
        """Until a consumer (our worker) listens on ``queue``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.channel.queue_declare(queue, passive=True).method.consumer_count:
                    return
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                self.channel = self.connection.channel()
            self.connection.sleep(0.05)
        raise AssertionError(f"nobody consumes {queue}")

    def count(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def publish(self, queue: str, body: bytes, **properties: Any) -> None:
        self.channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2,
                                                                         **properties))

    def reset_topology_queues(self) -> None:
        """Empty the shared queues of the vhost (they exist once the topology was declared)."""
        for name in (DEAD_LETTER_QUEUE, *INBOUND_QUEUES):
            try:
                self.channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet in this vhost
                self.channel = self.connection.channel()

    def close(self) -> None:
        try:
            if not self.channel.is_open:
                self.channel = self.connection.channel()
            for name in self._queues:
                self.channel.queue_delete(name)
            self.connection.close()
        except pika.exceptions.AMQPError:
            pass
