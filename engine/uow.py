"""The unit of work and the stores it carries beside the index: inbox, outbox, audit trail,
members and the notifications written with their changes, and the message journal.

A unit of work is one transaction. It rolls back unless ``commit`` is called, and the outbox
rows, audit entries and journal entries are written in that same commit, so an event, an
audit entry or a journal entry exists exactly when its change does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from engine.audit import AuditTrail
from engine.commands import MessageOrigin, Outcome
from engine.journal import JournalTrail
from engine.notifications import NotificationOutbox
from membership.repository import MemberRepository
from mpi.repository import MpiRepository

__all__ = ["Inbox", "Outbox", "OutboxMessage", "UnitOfWork"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    """One event waiting to be published.

    It carries no sequence number: the store numbers a subject's events when the unit of
    work commits, from a counter in the database (``Outbox.add``).
    """

    event_id: str
    routing_key: str
    subject: str  # whose event it is: a patient id, a member id, ...
    correlation_id: str
    occurred_at: datetime
    data: dict[str, Any]


class Inbox(ABC):
    """Remembers committed inbound messages by (sender, control id)."""

    @abstractmethod
    def seen(self, origin: MessageOrigin) -> bool:
        """Whether a message with this sender and control id was committed before."""

    @abstractmethod
    def record(self, origin: MessageOrigin, outcome: Outcome, at: datetime) -> None:
        """Remember the message as committed (takes effect with the unit of work)."""

    def prefetch(self, origins: Iterable[MessageOrigin]) -> None:  # noqa: B027 - optional hint
        """Hint: these origins will be asked about."""


class Outbox(ABC):
    """Collects events to publish after commit."""

    @abstractmethod
    def add(self, message: OutboxMessage) -> None:
        """Queue ``message``; it is stored with the unit of work's commit.

        At commit each message gets the next sequence number of its subject, in the order
        the messages were added, taken from the database inside the same transaction: so the
        numbers of one subject never repeat or skip, whatever number of writers run.
        """


class UnitOfWork(ABC):
    """One transaction over the index, the members, the inbox, both outboxes, the audit trail
    and the message journal."""

    mpi: MpiRepository
    members: MemberRepository
    inbox: Inbox
    outbox: Outbox
    notifications: NotificationOutbox
    audit: AuditTrail
    journal: JournalTrail

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def commit(self) -> None:
        """Write everything and commit; afterwards the unit of work is spent."""

    def commit_overlapping(self, meanwhile: Callable[[], None]) -> None:
        """``commit``, running ``meanwhile`` while the database works on the commit (a store
        with round trips sends the commit first and waits for its answer after). Here, for
        stores without: ``meanwhile`` first. It must not touch this unit of work."""
        meanwhile()
        self.commit()

    @abstractmethod
    def close(self) -> None:
        """Roll back whatever was not committed and release the connection."""
