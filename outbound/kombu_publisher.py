# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""Status events through any kombu transport without publisher confirms: the embedded broker.

``portalbridge serve`` with no ``PORTALBRIDGE_BROKER_URL`` publishes to kombu's in-process
memory transport, so the first command of the README needs nothing installed. A publish that
returns is the confirm there; a message no queue is bound for is reported unroutable, as
RabbitMQ's mandatory return would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer

from engine.broker import BrokerUnavailable, broker_errors, declare_topology
from engine.broker import open_connection as open_broker
from engine.errors import TransientFailure
from outbound.ports import Delivery, OutgoingMessage, PublishReport, StatusPublisher

__all__ = ["KombuStatusPublisher"]


class KombuStatusPublisher(StatusPublisher):
    """Publishes through kombu's ``Producer``; for transports that have no confirms."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        producer = self._open()
        results: list[Delivery] = []
        try:
            with broker_errors():
                for message in messages:
                    routed = self._routable(producer.channel, message.exchange, message.routing_key)
                    producer.publish(
                        message.body, exchange=message.exchange, routing_key=message.routing_key,
                        content_type=message.content_type, content_encoding="utf-8",
                        headers=message.headers, message_id=message.message_id,
                        correlation_id=message.correlation_id or None, delivery_mode=2,
                        retry=False)
                    results.append(Delivery.CONFIRMED if routed else Delivery.UNROUTABLE)
        except TransientFailure as exc:
            self.close()
            unknown = [Delivery.UNKNOWN] * (len(messages) - len(results))
            return PublishReport(results=results + unknown, failure=exc)
        return PublishReport(results=results)

    @staticmethod
    def _routable(channel: Any, exchange: str, routing_key: str) -> bool:
        """Whether a queue is bound for ``routing_key`` (virtual transports route in-process)."""
        if not hasattr(channel, "get_table"):
            return True
        if not exchange:  # the default exchange: the routing key names the queue
            return bool(channel._has_queue(routing_key))
        table = channel.get_table(exchange)
        queues = channel.typeof(exchange).lookup(table, exchange, routing_key, None)
        return bool(queues)

    def open(self) -> None:
        self._open()

    def _open(self) -> Producer:
        if self._producer is not None:
            return self._producer
        try:
            self._connection = open_broker(self._url)
            with broker_errors():
                channel = self._connection.channel()
                declare_topology(channel)
                self._producer = Producer(channel)
        except TransientFailure as exc:
            self.close()
            raise BrokerUnavailable(exc.reason) from exc
        return self._producer

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            connection.release()
