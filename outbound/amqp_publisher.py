# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""Status events to RabbitMQ with windowed publisher confirms (py-amqp through kombu).

kombu's ``confirm_publish`` option waits for each confirm before the next publish: one round
trip per event. Here the channel is put in confirm mode once and up to ``window`` messages
are in flight; the broker's ``basic.ack``/``basic.nack`` (often ``multiple``) and
``basic.return`` arrive as channel events and are matched to messages by delivery tag and
message id. RabbitMQ sends a mandatory message's ``basic.return`` before its ``basic.ack``,
so a returned message is known to be unroutable by the time it is confirmed.

Two costs of py-amqp are avoided, measured to take two thirds of the time per event: each
publish is one ``sendall`` (here frames are collected through py-amqp's ``frame_writer`` hook
and written every ``FLUSH_EVERY`` messages), and each publish first tries a zero-timeout read
to notice ``connection.blocked`` (here the broker's answers are read at the window's edge;
a blocked connection still surfaces there, and a write that blocks times out).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import amqp
from kombu.connection import Connection

from engine.broker import (
    STATUS_EXCHANGE,
    BrokerRefused,
    BrokerUnavailable,
    broker_errors,
    classify_broker_error,
    declare_topology,
    open_connection,
)
from engine.broker.cork import Cork, corked_frame_writer
from engine.errors import TransientFailure
from outbound.ports import Delivery, OutgoingMessage, PublishReport, StatusPublisher

__all__ = ["AmqpStatusPublisher"]

log = logging.getLogger(__name__)

FLUSH_EVERY = 64  # messages per socket write


class _Confirms:
    """The answers of one ``publish`` call, by delivery tag."""

    def __init__(self, count: int) -> None:
        self.results = [Delivery.UNKNOWN] * count
        self.reasons: dict[int, str] = {}
        self.waiting: dict[int, int] = {}  # delivery tag -> index, in publish order
        self.by_message_id: dict[str, int] = {}
        self.returned: set[int] = set()

    def published(self, tag: int, index: int, message_id: str) -> None:
        self.waiting[tag] = index
        self.by_message_id[message_id] = index

    def answered(self, tag: int, multiple: bool, *, ack: bool) -> None:
        if multiple:
            tags = []
            for waiting in self.waiting:  # ascending: stop at the first later tag
                if waiting > tag:
                    break
                tags.append(waiting)
        else:
            tags = [tag] if tag in self.waiting else []
        for done in tags:
            index = self.waiting.pop(done)
            if not ack:
                self.results[index] = Delivery.REFUSED
                self.reasons[index] = "the broker refused the message (basic.nack)"
            else:
                self.results[index] = (Delivery.UNROUTABLE if index in self.returned
                                       else Delivery.CONFIRMED)

    def returned_message(self, message_id: str | None) -> None:
        index = self.by_message_id.get(message_id or "")
        if index is not None:
            self.returned.add(index)

    def give_up(self, result: Delivery, reason: str) -> None:
        for index in self.waiting.values():
            self.results[index] = result
            if result is Delivery.REFUSED:
                self.reasons[index] = reason
        self.waiting.clear()


class AmqpStatusPublisher(StatusPublisher):
    """Publishes to ``portalbridge.status``: persistent, mandatory, confirmed in windows."""

    def __init__(self, url: str, *, window: int = 1000, confirm_timeout: float = 30.0) -> None:
        self._url = url
        self._window = window
        self._confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel: Any = None
        self._next_tag = 1
        self._confirms = _Confirms(0)
        self._cork: Cork | None = None

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        channel = self._open()
        confirms = self._confirms = _Confirms(len(messages))
        failure: TransientFailure | None = None
        try:
            with broker_errors():
                self._publish_all(channel, messages, confirms)
        except BrokerRefused as exc:  # the broker closed the channel: charge what was in flight
            confirms.give_up(Delivery.REFUSED, exc.reason)
            self._drop_channel()
        except TransientFailure as exc:  # the connection is gone: nothing more is known
            confirms.give_up(Delivery.UNKNOWN, exc.reason)
            self._drop_connection()
            failure = exc
        return PublishReport(results=confirms.results, reasons=confirms.reasons, failure=failure)

    def _publish_all(self, channel: Any, messages: Sequence[OutgoingMessage],
                     confirms: _Confirms) -> None:
        assert self._connection is not None and self._cork is not None
        raw, cork = self._connection.connection, self._cork  # py-amqp's connection
        cork.corked = True
        try:
            for index, message in enumerate(messages):
                confirms.published(self._next_tag, index, message.message_id)
                self._next_tag += 1
                channel.basic_publish(_amqp_message(message), exchange=message.exchange,
                                      routing_key=message.routing_key, mandatory=True)
                if index % FLUSH_EVERY == FLUSH_EVERY - 1:
                    cork.flush()
                if len(confirms.waiting) >= self._window:
                    cork.flush()
                    while len(confirms.waiting) >= self._window:
                        raw.drain_events(timeout=self._confirm_timeout)
            cork.flush()
        finally:
            cork.corked = False
        while confirms.waiting:
            raw.drain_events(timeout=self._confirm_timeout)

    # -- connection and channel ---------------------------------------------------------

    def open(self) -> None:
        self._open()

    def _open(self) -> Any:
        if self._channel is not None:
            return self._channel
        try:
            if self._connection is None:
                self._connection = open_connection(
                    self._url, amqp_options={"frame_writer": self._frame_writer})
                # We read the broker's answers at the window's edge (module docstring).
                capabilities = self._connection.connection.client_properties.get(
                    "capabilities", {})
                capabilities["connection.blocked"] = False
            with broker_errors():
                channel = self._connection.channel()
                declare_topology(channel)
                channel.confirm_select()
        except TransientFailure as exc:
            self._drop_connection()
            raise BrokerUnavailable(exc.reason) from exc
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._channel, self._next_tag = channel, 1
        log.info("relay: publishing to %s with windowed confirms (window %d)",
                 STATUS_EXCHANGE, self._window)
        return channel

    def _frame_writer(self, connection: Any, transport: Any) -> Any:
        """py-amqp's own frame writer, writing into a cork we flush (module docstring)."""
        writer, self._cork = corked_frame_writer(connection, transport)
        return writer

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._confirms.answered(tag, multiple, ack=True)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._confirms.answered(tag, multiple, ack=False)

    def _on_return(self, _exc: Exception, _exchange: str, _routing_key: str,
                   message: amqp.Message) -> None:
        self._confirms.returned_message(message.properties.get("message_id"))

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            try:
                channel.close()
            except Exception as exc:  # noqa: BLE001 - already closed by the broker
                log.debug("relay: closing a failed channel: %s", classify_broker_error(exc))

    def _drop_connection(self) -> None:
        self._channel = None
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.collect()  # drop the socket without a closing handshake
            except Exception as exc:  # noqa: BLE001 - nothing left to release
                log.debug("relay: releasing a lost connection: %s", classify_broker_error(exc))

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.debug("relay: closing the connection: %s", classify_broker_error(exc))


def _amqp_message(message: OutgoingMessage) -> amqp.Message:
    properties: dict[str, Any] = {
        "content_type": message.content_type,
        "delivery_mode": 2,  # persistent
        "message_id": message.message_id,
        "application_headers": message.headers,
        "app_id": "portalbridge",
    }
    if message.correlation_id:
        properties["correlation_id"] = message.correlation_id
    return amqp.Message(message.body, **properties)
