"""The relay's ports: where outbox rows come from and where status events go.

Each port has one or two methods and an in-memory double in the tests, so the relay's policy
(confirm before marking sent, isolate a refused row, back off, dead-letter after N attempts)
is tested without a broker or a database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.broker import STATUS_EXCHANGE
from engine.errors import TransientFailure

__all__ = [
    "Claim",
    "Delivery",
    "OutboxRow",
    "OutboxStore",
    "OutgoingMessage",
    "PublishReport",
    "RowFailure",
    "StatusPublisher",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow:
    """One committed outbox row, as the relay reads it (``data`` is the stored JSON text)."""

    id: int
    event_id: str
    routing_key: str
    subject: str
    sequence: int
    correlation_id: str
    occurred_at: datetime
    data: str
    attempts: int = 0
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """A status event ready for the wire: body plus AMQP properties."""

    routing_key: str
    body: bytes
    message_id: str
    correlation_id: str
    headers: dict[str, Any]
    content_type: str
    timestamp: datetime
    #: The status exchange for events; "" (the default exchange) for commands sent to a queue.
    exchange: str = STATUS_EXCHANGE


class Delivery(StrEnum):
    """What became of one published message."""

    CONFIRMED = "confirmed"  # the broker took responsibility (basic.ack)
    UNROUTABLE = "unroutable"  # confirmed, but no queue was bound for it (mandatory return)
    REFUSED = "refused"  # the broker refused it (basic.nack, channel error)
    UNKNOWN = "unknown"  # the connection was lost before the broker answered


@dataclass(slots=True)
class PublishReport:
    """One result per message, in order, plus why publishing stopped early (if it did)."""

    results: list[Delivery]
    reasons: dict[int, str] = field(default_factory=dict)  # index -> why it was refused
    failure: TransientFailure | None = None  # set when the connection was lost


class StatusPublisher(ABC):
    """Publishes status events to the broker and reports, per message, what the broker said."""

    @abstractmethod
    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        """Publish ``messages`` in order and wait for the broker's answers.

        Raises ``BrokerUnavailable`` when nothing could be published (no connection); a
        connection lost midway is reported in ``PublishReport.failure`` with the messages
        the broker never answered as ``UNKNOWN``.
        """

    def open(self) -> None:  # noqa: B027 - optional
        """Connect and declare the topology now, at start, rather than at the first event."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A row the broker refused: count the attempt, retry at ``retry_at`` or give up."""

    row_id: int
    error: str
    retry_at: datetime
    dead: bool


class Claim(ABC):
    """Rows claimed by one relay; the outcome is written when the claim closes normally.

    Leaving the claim by an exception writes nothing: the rows stay pending for the next try.
    """

    rows: list[OutboxRow]

    @abstractmethod
    def settle(self, sent: Sequence[int], unrouted: Sequence[int],
               failures: Sequence[RowFailure], at: datetime) -> None:
        """Record what became of the claimed rows (row ids); rows not named stay pending."""


class OutboxStore(ABC):
    """Hands out committed outbox rows to relays, one claim at a time."""

    @abstractmethod
    def claim(self, limit: int, now: datetime) -> AbstractContextManager[Claim]:
        """Claim up to ``limit`` pending rows that are due, in commit order per subject."""
