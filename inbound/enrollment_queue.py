# mypy: disable-error-code="no-untyped-call"
# (kombu and py-amqp annotate only part of their API; their calls are checked by the tests)
"""The automated-enrollment consumer of ``portalbridge.enrollment.requests``.

It works in batches, for bulk enrollment: up to ``prefetch`` deliveries are taken, their
passphrases hashed in parallel off the writer, their commands submitted together (so they
share group commits), then every reply and dead letter is published and confirmed in one
go, and only then are the deliveries acked. Per request:

* applied, or a repeated ``request_id``: reply ``accepted`` / ``duplicate``, ack;
* the patient is already a member: reply ``rejected`` with the reason, ack;
* malformed JSON, a wrong value, an unknown patient, a policy refusal: reply ``rejected`` and
  dead-letter the request to ``portalbridge.dead`` with the reason in
  ``x-portalbridge-reason`` (never requeued, so never a loop), ack;
* the database is unavailable: the batch is retried in place with back-off (nothing is
  acked or dead-lettered meanwhile); a broker outage reconnects with back-off.

It runs in ``portalbridge worker`` on RabbitMQ and in ``serve`` on the in-process broker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Protocol

import amqp
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer, Producer
from tenacity import RetryCallState, Retrying, retry_if_exception_type
from tenacity import stop_when_event_set as stop_when_set

from engine.broker import (
    DEAD_EXCHANGE,
    ENROLLMENT_QUEUE,
    broker_errors,
    dead_letter_headers,
    declare_topology,
    is_amqp_url,
    open_connection,
)
from engine.broker.cork import Cork, corked_frame_writer
from engine.commands import Command, Outcome
from engine.enrollment_intake import EnrollmentIntake, PreparedRequest
from engine.enrollment_requests import reply_body
from engine.errors import AlreadyMember, EngineError, RejectedMessage, TransientFailure
from membership.policies import EnrollmentMode

__all__ = ["ConsumerPolicy", "EnrollmentQueueConsumer"]

log = logging.getLogger(__name__)

Submit = Callable[[Command], "Future[Outcome]"]
Result = tuple[Outcome | None, EngineError | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerPolicy:
    prefetch: int = 500  # the largest batch (the channel's prefetch is twice this: two batches)
    linger: float = 0.005  # wait this long for more deliveries before working a batch
    poll: float = 1.0
    retry_initial: float = 0.5
    retry_max: float = 30.0
    confirm_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class _Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]


class _Publisher(Protocol):
    def publish_all(self, messages: list[_Outgoing]) -> None: ...

    def ack_all(self, batch: list[Message]) -> None: ...


class _ConfirmedPublisher:
    """RabbitMQ: one confirm-mode channel; publish a batch (one socket write), then wait for
    every confirm."""

    def __init__(self, connection: Connection, timeout: float, cork: Cork | None) -> None:
        self._raw = connection.connection
        self._cork = cork
        self._channel = connection.channel()
        self._channel.confirm_select()
        self._waiting: set[int] = set()
        self._refused: set[int] = set()
        self._next = 1
        self._timeout = timeout
        self._channel.events["basic_ack"].add(lambda tag, multiple: self._answer(tag, multiple, True))
        self._channel.events["basic_nack"].add(lambda tag, multiple: self._answer(tag, multiple, False))

    def _answer(self, tag: int, multiple: bool, ack: bool) -> None:
        done = {t for t in self._waiting if t <= tag} if multiple else {tag}
        self._waiting -= done
        if not ack:
            self._refused |= done

    def publish_all(self, messages: list[_Outgoing]) -> None:
        if self._cork is not None:
            self._cork.corked = True
        try:
            for message in messages:
                self._waiting.add(self._next)
                self._next += 1
                self._channel.basic_publish(amqp.Message(message.body, **message.properties),
                                            exchange=message.exchange,
                                            routing_key=message.routing_key)
        finally:
            if self._cork is not None:
                self._cork.corked = False
                self._cork.flush()
        deadline = time.monotonic() + self._timeout
        while self._waiting:  # new deliveries that arrive meanwhile only join the buffer
            self._raw.drain_events(timeout=max(0.01, deadline - time.monotonic()))
        if self._refused:
            self._refused.clear()
            raise TransientFailure("the broker refused a reply or dead letter (basic.nack)")

    @staticmethod
    def ack_all(batch: list[Message]) -> None:
        """One ``basic.ack`` with ``multiple`` for a batch: every earlier delivery is settled."""
        last = max(batch, key=lambda m: m.delivery_tag)
        last.channel.basic_ack(last.delivery_tag, multiple=True)


class _PlainPublisher:
    """The in-process broker: a publish that returns is delivered."""

    def __init__(self, connection: Connection) -> None:
        self._producer = Producer(connection.channel())

    def publish_all(self, messages: list[_Outgoing]) -> None:
        for m in messages:
            props = dict(m.properties)
            headers = props.pop("application_headers", None)
            self._producer.publish(m.body, exchange=m.exchange, routing_key=m.routing_key,
                                   headers=headers, retry=False, content_encoding="utf-8", **props)

    @staticmethod
    def ack_all(batch: list[Message]) -> None:
        for message in batch:  # the in-process broker acks one delivery at a time
            message.ack()


_MAX_IN_FLIGHT = 2  # batches read ahead while the writer commits


class _InFlight:
    """A batch whose commands are with the committer; retried in place while the database is
    unavailable (nothing is acked or dead-lettered meanwhile)."""

    def __init__(self, batch: list[Message], prepared: list[PreparedRequest], delay: float) -> None:
        self.batch = batch
        self.prepared = prepared
        self.results: list[Result] = [(None, None)] * len(batch)
        self._futures: dict[int, Future[Outcome]] = {}
        self._delay = delay
        self._retry_at = 0.0

    def submit(self, submit: Submit, indexes: list[int]) -> None:
        self._futures = {i: submit(self.prepared[i].command) for i in indexes}  # type: ignore[arg-type]

    def wait_committed(self, timeout: float) -> bool:
        done, _ = wait(self._futures.values(), timeout=timeout)
        return len(done) == len(self._futures) and self._collect() == []

    def ready(self, submit: Submit, policy: ConsumerPolicy) -> bool:
        """Whether every command has its final answer (resubmitting transient failures)."""
        if self._retry_at and time.monotonic() < self._retry_at:
            return False
        if not all(f.done() for f in self._futures.values()):
            return False
        held = self._collect()
        if not held:
            return True
        log.warning("enrollment: %d request(s) held: %s; retrying in %.1f s", len(held),
                    self.results[held[0]][1].reason, self._delay)  # type: ignore[union-attr]
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(policy.retry_max, self._delay * 2)
        self.submit(submit, held)
        return False

    def _collect(self) -> list[int]:
        """Record the answers; the indexes that failed for a transient reason."""
        held = []
        for i, future in self._futures.items():
            error = future.exception()
            if error is None:
                self.results[i] = (future.result(), None)
                continue
            engine_error = error if isinstance(error, EngineError) else \
                TransientFailure(f"internal error ({type(error).__name__})")
            self.results[i] = (None, engine_error)
            if isinstance(engine_error, TransientFailure):
                held.append(i)
        return held


class EnrollmentQueueConsumer:
    """Consumes the enrollment request queue until stopped."""

    def __init__(self, url: str, intake: EnrollmentIntake, submit: Submit,
                 policy: ConsumerPolicy | None = None, *, queue: str = ENROLLMENT_QUEUE) -> None:
        self._url = url
        self._intake = intake
        self._submit = submit
        self.policy = policy or ConsumerPolicy()
        self._queue = queue
        self._buffer: list[Message] = []
        self._stop = threading.Event()
        self.processed = 0

    def run(self, stop: threading.Event, on_cycle: Callable[[], None] | None = None) -> None:
        self._stop = stop
        retrying = Retrying(retry=retry_if_exception_type(TransientFailure),
                            wait=self._wait, stop=stop_when_set(stop), sleep=self._pause,
                            before_sleep=_log_outage, reraise=True)
        with contextlib.suppress(TransientFailure):  # stopped while the broker was away
            retrying(self._consume, on_cycle)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        return float(min(30.0, 0.5 * 2 ** (state.attempt_number - 1)))

    def _consume(self, on_cycle: Callable[[], None] | None) -> None:
        cork: list[Cork] = []

        def writer(conn: Any, transport: Any) -> Any:
            frames, made = corked_frame_writer(conn, transport)
            cork.append(made)
            return frames

        connection = open_connection(self._url, heartbeat=30, amqp_options={"frame_writer": writer})
        self._buffer = []  # unacked deliveries of a lost connection are redelivered
        in_flight: deque[_InFlight] = deque()
        try:
            with broker_errors():
                channel = connection.channel()
                declare_topology(channel)
                publisher: _Publisher = (
                    _ConfirmedPublisher(connection, self.policy.confirm_timeout, cork[0] if cork else None)
                    if is_amqp_url(self._url) else _PlainPublisher(connection))
                with Consumer(channel, [Queue(self._queue, no_declare=True)],
                              on_message=self._received,
                              prefetch_count=self.policy.prefetch * _MAX_IN_FLIGHT):
                    log.info("enrollment: consuming %s (prefetch %d)", self._queue, self.policy.prefetch)
                    while not self._stop.is_set():
                        if on_cycle is not None:
                            on_cycle()
                        self._cycle(connection, publisher, in_flight)
                    self._drain(in_flight, publisher)
        finally:
            connection.release()

    def _cycle(self, connection: Connection, publisher: _Publisher,
               in_flight: deque[_InFlight]) -> None:
        """Read deliveries, start a batch, finish the batches whose commands committed.

        Batches overlap: while the writer commits one, the next is read and prepared here.
        They finish in order, on this thread (the connection is not shared across threads).
        """
        self._fill(connection, self.policy.linger if in_flight else self.policy.poll)
        if self._buffer and len(in_flight) < _MAX_IN_FLIGHT:
            batch, self._buffer = self._buffer, []
            in_flight.append(self._start(batch))
        while in_flight and in_flight[0].ready(self._submit, self.policy):
            self._finish(in_flight.popleft(), publisher)

    def _drain(self, in_flight: deque[_InFlight], publisher: _Publisher) -> None:
        """Stopping: answer what already committed; what did not stays unacked (redelivered)."""
        while in_flight and in_flight[0].wait_committed(self.policy.confirm_timeout):
            self._finish(in_flight.popleft(), publisher)

    def _received(self, message: Message) -> None:
        self._buffer.append(message)  # the current buffer: a batch takes the list away

    def _fill(self, connection: Connection, timeout: float) -> None:
        """Wait up to ``timeout`` for a delivery, then linger briefly for more, up to the prefetch."""
        while len(self._buffer) < self.policy.prefetch:
            try:
                connection.drain_events(timeout=timeout)
            except TimeoutError:
                if not self._buffer:
                    connection.heartbeat_check()
                break
            timeout = self.policy.linger

    # -- one batch ----------------------------------------------------------------------------

    def _start(self, batch: list[Message]) -> _InFlight:
        prepared = self._intake.prepare_many(
            [(m.body, _fallback_id(m)) for m in batch], mode=EnrollmentMode.AUTOMATED, actor=None,
            channel="amqp")
        flight = _InFlight(batch, prepared, self.policy.retry_initial)
        flight.submit(self._submit, [i for i, p in enumerate(prepared) if p.command is not None])
        return flight

    def _finish(self, flight: _InFlight, publisher: _Publisher) -> None:
        outgoing: list[_Outgoing] = []
        for message, request, (outcome, failure) in zip(flight.batch, flight.prepared,
                                                        flight.results, strict=True):
            error = failure or request.error
            reply = _reply(message, request.reply(outcome, error))
            if reply is not None:
                outgoing.append(reply)
            if isinstance(error, RejectedMessage) and not isinstance(error, AlreadyMember):
                outgoing.append(self._dead_letter(message, error))
        with broker_errors():
            publisher.publish_all(outgoing)
            publisher.ack_all(flight.batch)
        self.processed += len(flight.batch)

    def _dead_letter(self, message: Message, error: RejectedMessage) -> _Outgoing:
        properties: dict[str, Any] = message.properties
        headers = dead_letter_headers(message.headers, error, self._queue)
        log.info("enrollment: request %s dead-lettered (%s at %s)", _fallback_id(message),
                 type(error).__name__, error.location or "-")
        return _Outgoing(DEAD_EXCHANGE, self._queue, message.body, _props(
            content_type=properties.get("content_type") or "application/json",
            message_id=properties.get("message_id"), correlation_id=properties.get("correlation_id"),
            delivery_mode=2, application_headers=headers))


def _props(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _fallback_id(message: Message) -> str:
    """The AMQP message id stands in for a missing ``request_id`` (a redelivery repeats it)."""
    properties: dict[str, Any] = message.properties
    return str(properties.get("message_id") or f"delivery-{message.delivery_tag}")[:200]


def _reply(message: Message, reply: dict[str, Any]) -> _Outgoing | None:
    properties: dict[str, Any] = message.properties
    reply_to = properties.get("reply_to")
    if not reply_to:
        return None
    correlation = properties.get("correlation_id") or properties.get("message_id")
    return _Outgoing("", reply_to, reply_body(reply), _props(
        content_type="application/json", correlation_id=correlation, delivery_mode=1))


def _log_outage(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("enrollment: %s; reconnecting in %.1f s", getattr(error, "reason", error), wait_s)
