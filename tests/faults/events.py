"""The downstream side: a subscriber's durable queue bound to the status exchange.

It acknowledges each event after noting it, reconnects when the broker goes away, and keeps
the first arrival of every event id in order (later arrivals of the same id are the
redeliveries a subscriber dedupes).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from engine.broker import SEQUENCE_HEADER, STATUS_EXCHANGE

QUEUE = "faults.mpi-changed"


@dataclass
class Arrival:
    event_id: str
    subject: str
    sequence: int
    correlation_id: str


@dataclass
class Subscriber:
    url: str
    first: list[Arrival] = field(default_factory=list)  # first arrival of each event, in order
    deliveries: int = 0
    reconnects: int = 0
    seen: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def declare(self) -> None:
        """The queue, before any event is published (the relay publishes mandatory)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        channel.exchange_declare(STATUS_EXCHANGE, "topic", durable=True)
        channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(QUEUE, STATUS_EXCHANGE, "mpi.changed")
        connection.close()

    def start(self) -> None:
        self.declare()
        self.thread = threading.Thread(target=self._run, name="subscriber", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._consume()
            except (pika.exceptions.AMQPError, OSError):
                self.reconnects += 1
                time.sleep(0.5)  # the broker is restarting: try again

    def _consume(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=200)
            channel.basic_consume(QUEUE, self._received)
            while not self.stop.is_set():
                connection.process_data_events(time_limit=0.5)
        finally:
            if connection.is_open:
                connection.close()

    def _received(self, channel: BlockingChannel, method: Any, properties: pika.BasicProperties,
                  body: bytes) -> None:
        event = json.loads(body)
        self.deliveries += 1
        if event["id"] not in self.seen:
            self.seen.add(event["id"])
            self.first.append(Arrival(event["id"], event["subject"],
                                      int((properties.headers or {})[SEQUENCE_HEADER]),
                                      str(properties.correlation_id)))
        channel.basic_ack(method.delivery_tag)
