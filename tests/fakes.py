"""In-memory doubles of portalbridge's own ports (never mocks of libraries)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from engine.commands import MessageOrigin, Outcome
from engine.domain.clock import Clock, IdSource
from engine.notifications import Notification, NotificationOutbox
from engine.uow import Inbox, Outbox, OutboxMessage, UnitOfWork
from membership.repository import InMemoryMemberRepository
from membership.tokens import RandomSource, SecretBox
from mpi.repository import InMemoryMpiRepository


class FixedClock(Clock):
    """A clock that moves only when told to (or by ``step`` on every reading)."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(0)) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.step = step

    def now(self) -> datetime:
        now = self.current
        self.current = now + self.step
        return now

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class SequentialIds(IdSource):
    """Readable, predictable ids: id-1, id-2, ... and UUID-shaped event ids."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"id-{next(self._counter)}"

    def new_uuid(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._counter):012d}"


class InMemoryInbox(Inbox):
    def __init__(self) -> None:
        self.committed: dict[tuple[str, str], Outcome] = {}
        self.pending: dict[tuple[str, str], Outcome] = {}

    def seen(self, origin: MessageOrigin) -> bool:
        key = (origin.sender, origin.control_id)
        return key in self.committed or key in self.pending

    def record(self, origin: MessageOrigin, outcome: Outcome, at: datetime) -> None:
        self.pending[(origin.sender, origin.control_id)] = outcome

    def prefetch(self, origins: Iterable[MessageOrigin]) -> None:
        return None


class InMemoryOutbox(Outbox):
    def __init__(self) -> None:
        self.committed: list[OutboxMessage] = []
        self.pending: list[OutboxMessage] = []

    def add(self, message: OutboxMessage) -> None:
        self.pending.append(message)


class InMemoryNotifications(NotificationOutbox):
    def __init__(self) -> None:
        self.committed: list[Notification] = []
        self.pending: list[Notification] = []

    def add(self, notification: Notification) -> None:
        self.pending.append(notification)


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over shared in-memory stores; rollback discards what was pending.

    The index itself is not transactional here: the handlers check before they change, which
    is what the unit tests verify; transactional rollback of the index is tested on SQL.
    """

    def __init__(self, mpi: InMemoryMpiRepository | None = None,
                 inbox: InMemoryInbox | None = None, outbox: InMemoryOutbox | None = None,
                 members: InMemoryMemberRepository | None = None,
                 notifications: InMemoryNotifications | None = None) -> None:
        self.mpi = mpi or InMemoryMpiRepository()
        self.inbox = inbox or InMemoryInbox()
        self.outbox = outbox or InMemoryOutbox()
        self.members = members or InMemoryMemberRepository()
        self.notifications = notifications or InMemoryNotifications()
        self.commits = 0

    def commit(self) -> None:
        assert isinstance(self.inbox, InMemoryInbox) and isinstance(self.outbox, InMemoryOutbox)
        self.inbox.committed.update(self.inbox.pending)
        self.outbox.committed.extend(self.outbox.pending)
        assert isinstance(self.notifications, InMemoryNotifications)
        self.notifications.committed.extend(self.notifications.pending)
        self.commits += 1
        self.close()

    def close(self) -> None:
        assert isinstance(self.inbox, InMemoryInbox) and isinstance(self.outbox, InMemoryOutbox)
        self.inbox.pending.clear()
        self.outbox.pending.clear()
        assert isinstance(self.notifications, InMemoryNotifications)
        self.notifications.pending.clear()


class CountingRandom(RandomSource):
    """Predictable "randomness": bytes from a counter, so tokens differ but repeat per run."""

    def __init__(self, seed: int = 0) -> None:
        self._counter = itertools.count(seed)

    def bytes(self, count: int) -> bytes:
        return hashlib.sha256(str(next(self._counter)).encode()).digest()[:count].ljust(count, b"\0")


class ReversibleBox(SecretBox):
    """A secret box whose "ciphertext" is readable in tests, yet detects tampering."""

    def seal(self, plaintext: str) -> str:
        return "sealed:" + plaintext[::-1] + ":" + hashlib.sha256(plaintext.encode()).hexdigest()[:8]

    def open(self, sealed: str) -> str:
        prefix, body, check = sealed.split(":")
        plaintext = body[::-1]
        if prefix != "sealed" or hashlib.sha256(plaintext.encode()).hexdigest()[:8] != check:
            raise ValueError("tampered")
        return plaintext


#: A fixed secret key for runtimes built in tests (32 bytes, base64).
TEST_SECRET_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXQ="
