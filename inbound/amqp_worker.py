# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""``portalbridge worker``: HL7 v2 messages from the ``portalbridge.inbound.hl7`` queue.

One AMQP message carries one HL7 v2 message (the bytes an MLLP frame would carry). Without
partitions the worker applies the messages of ``portalbridge.inbound.hl7`` itself; with
``PORTALBRIDGE_INBOUND_PARTITIONS`` it moves each to its partition queue
(``inbound.amqp_dispatch``) and applies those of its partitions
(``PORTALBRIDGE_WORKER_PARTITIONS``). Every one of these queues has a single active
consumer, so per patient the messages are applied in the order they arrived.

An applied message takes the MLLP path through :class:`~inbound.hl7.receiver.Hl7Receiver`
and the group committer, and the error class decides what happens to the AMQP message:

* applied (or a duplicate): the ACK goes to ``reply_to`` if the request named one, then the
  message is acked: only after its unit of work committed;
* ``RejectedMessage``: the message is published (confirmed) to ``portalbridge.dead`` with the
  reason, HL7 error location and code in ``x-portalbridge-*`` headers, the AR goes to
  ``reply_to``, then the message is acked;
* ``StoreUnavailable``: the message stays unacked and is retried in place with a capped
  exponential back-off: a database outage pauses consumption instead of dead-lettering;
* any other ``TransientFailure`` (an internal error) is retried in place a few times, then
  handed back to the broker; the queue's delivery limit dead-letters it if it keeps failing,
  so a message that crashes the worker cannot loop forever.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer, Producer
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential
from tenacity import stop_when_event_set as stop_when_set

from engine.broker import (
    DEAD_EXCHANGE,
    HL7_QUEUE,
    DeadLetterHeaders,
    broker_errors,
    dead_letter_headers,
    declare_partitions,
    declare_topology,
    open_connection,
)
from engine.errors import EngineError, RejectedMessage, StoreUnavailable, TransientFailure
from inbound.amqp_dispatch import PartitionDispatcher

__all__ = ["HL7_CONTENT_TYPE", "Hl7QueueWorker", "WorkerPolicy"]

log = logging.getLogger(__name__)

#: The content type HAPI and most engines use for ER7-encoded HL7 v2.
HL7_CONTENT_TYPE = "x-application/hl7-v2+er7"

Answer = tuple[list[bytes], EngineError | None]
Handle = Callable[[bytes], Awaitable[Answer]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPolicy:
    """Back-off and patience of a worker."""

    prefetch: int = 1  # one message at a time: the queue's order is the apply order
    dispatch_prefetch: int = 50  # messages in flight to the partition-moving consumer
    retry_initial: float = 0.5
    retry_max: float = 30.0
    internal_retries: int = 3  # in-place tries of a non-database failure before handing back
    poll: float = 1.0  # how often the stop flag and heartbeats are looked at


class Hl7QueueWorker:
    """Consumes the inbound HL7 queues until stopped; reconnects with back-off.

    ``queues`` are applied (the entry queue, or this worker's partitions); with a
    ``dispatcher`` the entry queue's messages are moved to their partitions instead.
    """

    def __init__(self, url: str, handle: Handle, policy: WorkerPolicy | None = None, *,
                 queues: Sequence[str] = (HL7_QUEUE,),
                 dispatcher: PartitionDispatcher | None = None) -> None:
        self._url = url
        self._handle = handle
        self.policy = policy or WorkerPolicy()
        self._queues = tuple(queues)
        self._dispatcher = dispatcher
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._outage_tries = 0  # reset once consuming again, so each outage starts short
        #: Deliveries not handled yet, in arrival order, with their handler. Handling one may
        #: wait for a publisher confirm, and py-amqp hands over further deliveries while it
        #: waits: they are queued here, never handled inside another's handling.
        self._received: deque[tuple[Callable[[Message], None], Message]] = deque()

    def run(self, stop: threading.Event, on_cycle: Callable[[], None] | None = None) -> None:
        """Consume until ``stop`` is set; an unreachable broker is retried with back-off."""
        self._stop = stop
        self._loop = asyncio.new_event_loop()  # the receiver's coroutines run on it
        retrying = Retrying(retry=retry_if_exception_type(TransientFailure),
                            wait=self._outage_wait, stop=stop_when_set(stop), sleep=self._pause,
                            before_sleep=_log_outage, reraise=True)
        try:
            retrying(self._consume, stop, on_cycle)
        except TransientFailure:
            pass  # stopped while the broker was away
        finally:
            self._loop.close()

    def _consume(self, stop: threading.Event, on_cycle: Callable[[], None] | None) -> None:
        connection = self._connection = open_connection(self._url, heartbeat=30,
                                                        confirm_publish=True)
        try:
            with broker_errors(), ExitStack() as consumers:
                channel = connection.channel()
                declare_topology(channel)
                if self._dispatcher is not None:
                    declare_partitions(channel, self._dispatcher.partitions)
                self._producer = Producer(connection.channel())
                consumers.enter_context(self._consumer(channel))
                if self._dispatcher is not None:
                    consumers.enter_context(self._dispatching(connection.channel()))
                log.info("worker: applying %s%s", ", ".join(self._queues),
                         f"; moving {HL7_QUEUE} to {self._dispatcher.partitions} partitions"
                         if self._dispatcher is not None else "")
                self._outage_tries = 0
                while not stop.is_set():
                    if on_cycle is not None:
                        on_cycle()
                    if self._received:
                        handler, message = self._received.popleft()
                        handler(message)
                        continue
                    try:
                        connection.drain_events(timeout=self.policy.poll)
                    except TimeoutError:
                        connection.heartbeat_check()
        finally:
            self._received.clear()  # unacked: the broker delivers them again
            self._connection = self._producer = None
            connection.release()

    def _consumer(self, channel: Any) -> Consumer:
        return Consumer(channel, [Queue(name, no_declare=True) for name in self._queues],
                        on_message=lambda m: self._received.append((self._on_message, m)),
                        prefetch_count=self.policy.prefetch)

    def _dispatching(self, channel: Any) -> Consumer:
        return Consumer(channel, [Queue(HL7_QUEUE, no_declare=True)],
                        on_message=lambda m: self._received.append((self._move, m)),
                        prefetch_count=self.policy.dispatch_prefetch)

    def _move(self, message: Message) -> None:
        assert self._dispatcher is not None and self._producer is not None
        self._dispatcher.move(message, self._producer)

    def _outage_wait(self, _state: RetryCallState) -> float:
        """Capped exponential, counted from the last time the worker was consuming."""
        self._outage_tries += 1
        return float(min(self.policy.retry_max,
                         self.policy.retry_initial * 2 ** (self._outage_tries - 1)))

    # -- one message --------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        acks, error = self._answer(message.body)
        if error is None:
            self._reply(message, acks)
            message.ack()
        elif isinstance(error, RejectedMessage):
            self._dead_letter(message, error)
            self._reply(message, acks)
            message.ack()
        else:  # still failing: the broker redelivers it, up to the queue's delivery limit
            log.warning("worker: message %s handed back to the broker: %s",
                        message.properties.get("message_id", "-"), error.reason)
            message.reject(requeue=True)

    def _answer(self, body: bytes) -> Answer:
        retrying = Retrying(retry=_transient, stop=self._give_up,
                            wait=wait_exponential(multiplier=self.policy.retry_initial,
                                                  max=self.policy.retry_max),
                            sleep=self._pause, before_sleep=_log_held,
                            retry_error_callback=_result)
        answer: Answer = retrying(self._answer_once, body)
        return answer

    def _answer_once(self, body: bytes) -> Answer:
        assert self._loop is not None
        try:
            return self._loop.run_until_complete(self._handle(body))
        except Exception as exc:  # a bug met by this message: retried, then handed back
            log.exception("worker: internal error while handling a message")
            return [], TransientFailure(f"internal error ({type(exc).__name__})")

    def _give_up(self, state: RetryCallState) -> bool:
        if self._stop.is_set():
            return True
        _acks, error = _result(state)
        return (not isinstance(error, StoreUnavailable)
                and state.attempt_number >= self.policy.internal_retries)

    def _pause(self, seconds: float) -> None:
        """Sleep without going deaf: the broker must keep seeing our heartbeats."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self._stop.wait(min(left, self.policy.poll))
            if self._connection is not None:
                with broker_errors():
                    self._connection.heartbeat_check()

    def _reply(self, message: Message, acks: list[bytes]) -> None:
        properties: dict[str, Any] = message.properties
        reply_to = properties.get("reply_to")
        if not reply_to or self._producer is None:
            return
        correlation = properties.get("correlation_id") or properties.get("message_id")
        with broker_errors():
            for ack in acks:
                self._producer.publish(ack, exchange="", routing_key=reply_to,
                                       correlation_id=correlation, delivery_mode=1,
                                       content_type=HL7_CONTENT_TYPE, content_encoding="binary",
                                       retry=False)

    def _dead_letter(self, message: Message, error: RejectedMessage) -> None:
        assert self._producer is not None
        properties: dict[str, Any] = message.properties
        queue = _queue_of(message)
        headers = {**dead_letter_headers(message.headers, error, queue),
                   DeadLetterHeaders.HL7_ERROR_CODE: error.hl7_error_code}
        with broker_errors():  # confirmed (connection option): only then is the original acked
            self._producer.publish(
                message.body, exchange=DEAD_EXCHANGE, routing_key=queue, headers=headers,
                content_type=properties.get("content_type") or HL7_CONTENT_TYPE,
                content_encoding="binary", message_id=properties.get("message_id"),
                correlation_id=properties.get("correlation_id"), delivery_mode=2,
                mandatory=True, retry=False)
        log.info("worker: message %s dead-lettered (%s at %s)",
                 properties.get("message_id", "-"), type(error).__name__, error.location or "-")


def _queue_of(message: Message) -> str:
    """The queue a message was taken from (published with the default exchange: its key)."""
    info: dict[str, Any] = message.delivery_info or {}
    return str(info.get("routing_key") or HL7_QUEUE)


def _result(state: RetryCallState) -> Answer:
    assert state.outcome is not None
    answer: Answer = state.outcome.result()
    return answer


def _transient(state: RetryCallState) -> bool:
    if state.outcome is None or state.outcome.failed:
        return False
    return isinstance(_result(state)[1], TransientFailure)


def _log_held(state: RetryCallState) -> None:
    error = _result(state)[1]
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("worker: %s; message held, retrying in %.1f s",
                error.reason if error else "-", wait)


def _log_outage(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("worker: %s; reconnecting in %.1f s", getattr(error, "reason", error), wait)
