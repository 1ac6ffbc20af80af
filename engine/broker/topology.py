# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""The RabbitMQ topology of DESIGN.md section 3, declared idempotently by every process at start.

Names and arguments here are an external contract: downstream teams bind to them and
operators see them. Queue arguments cannot change once a queue exists (RabbitMQ refuses a
redeclaration with different arguments), so they are constants, not settings.
"""

from __future__ import annotations

from typing import Any

from amqp.exceptions import PreconditionFailed
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from engine.broker.errors import broker_errors
from engine.errors import ConfigurationError, RejectedMessage

__all__ = [
    "DEAD_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "DELIVERY_LIMIT",
    "ENROLLMENT_QUEUE",
    "HL7_QUEUE",
    "INBOUND_QUEUES",
    "INBOUND_QUEUE_ARGUMENTS",
    "SEQUENCE_HEADER",
    "STATUS_EXCHANGE",
    "DeadLetterHeaders",
    "declare_topology",
    "is_amqp_url",
    "open_connection",
]

#: Topic exchange of the status-change events (routing key = event type, e.g. ``mpi.changed``).
STATUS_EXCHANGE = "portalbridge.status"
#: Where every dead letter goes: refused inbound messages and poison messages.
DEAD_EXCHANGE = "portalbridge.dead"
#: Durable queue bound to the dead-letter exchange with ``#``: nothing dead-lettered is lost.
DEAD_LETTER_QUEUE = "portalbridge.dead.letters"
#: Automated-enrollment requests (consumed by the membership worker).
ENROLLMENT_QUEUE = "portalbridge.enrollment.requests"
#: HL7 v2 messages over AMQP, one message per body, answered like MLLP. One consumer at a
#: time takes them (single active consumer), so they are applied, or moved to their
#: partition (``engine.broker.partitions``), in the order they arrived.
HL7_QUEUE = "portalbridge.inbound.hl7"
#: Deliveries of one message before RabbitMQ dead-letters it (a worker that crashes on it).
DELIVERY_LIMIT = 5
#: Application header of status events: increases by one per patient.
SEQUENCE_HEADER = "portalbridge-sequence"


class DeadLetterHeaders:
    """Headers a worker adds when it dead-letters a message itself."""

    REASON = "x-portalbridge-reason"
    LOCATION = "x-portalbridge-location"
    ERROR = "x-portalbridge-error"
    HL7_ERROR_CODE = "x-portalbridge-hl7-error-code"
    QUEUE = "x-portalbridge-queue"


def dead_letter_headers(headers: dict[str, Any] | None, error: RejectedMessage, queue: str) -> dict[str, Any]:
    """The message's own headers plus why, where and from which queue it was refused."""
    return {**(headers or {}),
            DeadLetterHeaders.REASON: error.reason[:1000],
            DeadLetterHeaders.LOCATION: error.location or "",
            DeadLetterHeaders.ERROR: type(error).__name__,
            DeadLetterHeaders.QUEUE: queue}


_status = Exchange(STATUS_EXCHANGE, type="topic", durable=True)
_dead = Exchange(DEAD_EXCHANGE, type="topic", durable=True)
#: Arguments of every inbound queue (the partition queues add a single active consumer).
INBOUND_QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": DEAD_EXCHANGE,
    "x-delivery-limit": DELIVERY_LIMIT,
}
#: Per queue, arguments beyond the common ones.
_EXTRA_ARGUMENTS: dict[str, dict[str, Any]] = {HL7_QUEUE: {"x-single-active-consumer": True}}


def _inbound_queue(name: str) -> Queue:
    # Bound to the default exchange only: producers publish with routing key = queue name.
    arguments = {**INBOUND_QUEUE_ARGUMENTS, **_EXTRA_ARGUMENTS.get(name, {})}
    return Queue(name, durable=True, queue_arguments=arguments)


INBOUND_QUEUES = (ENROLLMENT_QUEUE, HL7_QUEUE)


def _entities() -> tuple[list[Exchange], list[Queue]]:
    dead_letters = Queue(DEAD_LETTER_QUEUE, exchange=_dead, routing_key="#", durable=True,
                         queue_arguments={"x-queue-type": "quorum"})
    return [_status, _dead], [dead_letters, *(_inbound_queue(n) for n in INBOUND_QUEUES)]


def declare_topology(channel: Any) -> None:
    """Declare every exchange and queue (idempotent); a clash of arguments is a config error."""
    exchanges, queues = _entities()
    try:
        with broker_errors():
            for exchange in exchanges:
                exchange.declare(channel=channel)
            for queue in queues:
                queue.declare(channel=channel)
    except Exception as exc:
        if isinstance(exc.__cause__, PreconditionFailed):
            raise ConfigurationError(
                f"the broker holds a portalbridge exchange or queue declared with other "
                f"arguments ({exc.__cause__}); delete it or fix its declaration") from exc
        raise


def is_amqp_url(url: str) -> bool:
    """Whether ``url`` names RabbitMQ (``amqp://``, ``amqps://``, ``pyamqp://``)."""
    return url.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}


def open_connection(url: str, *, heartbeat: float = 0, confirm_publish: bool = False,
                    connect_timeout: float = 5.0,
                    amqp_options: dict[str, Any] | None = None) -> Connection:
    """A connected kombu ``Connection`` (raises ``BrokerUnavailable`` when it cannot connect).

    ``confirm_publish`` makes every publish on it wait for the broker's confirm: right for
    rare publishes (dead letters, replies); the relay confirms in windows instead.
    ``amqp_options`` go to py-amqp's ``Connection`` on RabbitMQ and are ignored elsewhere.
    """
    options: dict[str, Any] = {}
    if is_amqp_url(url):
        options.update(amqp_options or {})
        # A blocked socket write (broker memory alarm) must fail instead of hanging forever.
        options["write_timeout"] = 30
        if confirm_publish:
            options["confirm_publish"] = True
    connection = Connection(url, heartbeat=heartbeat, connect_timeout=connect_timeout,
                            transport_options=options)
    with broker_errors():
        connection.connect()
    return connection
