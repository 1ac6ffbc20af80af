"""In-memory doubles of portalbridge's own ports (never mocks of libraries)."""

from __future__ import annotations

import builtins
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from engine.audit import AuditEntry, AuditLog, AuditRecord, AuditTrail, matches_filter
from engine.commands import MessageOrigin, Outcome
from engine.domain.clock import Clock, IdSource
from engine.errors import Conflict
from engine.journal import JournalEntry, JournalTrail
from engine.notifications import DeliveryFailed, Notification, NotificationOutbox
from engine.staff import StaffDirectory, StaffEntry
from engine.uow import Inbox, Outbox, OutboxMessage, UnitOfWork
from membership.repository import InMemoryMemberRepository
from membership.tokens import RandomSource, SecretBox
from mpi.repository import InMemoryMpiRepository
from outbound.notify import MailTransport, OutgoingMail, SmsGateway, TextMessage


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
    """Numbers each subject's messages at commit, as the SQL outbox does."""

    def __init__(self) -> None:
        self.committed: list[OutboxMessage] = []
        self.pending: list[OutboxMessage] = []
        self.sequences: dict[str, int] = {}  # event id -> sequence number
        self._last: dict[str, int] = {}  # subject -> last sequence number given

    def add(self, message: OutboxMessage) -> None:
        self.pending.append(message)

    def commit(self) -> None:
        for message in self.pending:
            self._last[message.subject] = self._last.get(message.subject, 0) + 1
            self.sequences[message.event_id] = self._last[message.subject]
        self.committed.extend(self.pending)


class InMemoryNotifications(NotificationOutbox):
    def __init__(self) -> None:
        self.committed: list[Notification] = []
        self.pending: list[Notification] = []

    def add(self, notification: Notification) -> None:
        self.pending.append(notification)


class InMemoryAuditTrail(AuditTrail):
    """Audit entries of a unit of work: ``pending`` until it commits, then ``committed``."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.committed: list[AuditEntry] = []
        self.pending: list[AuditEntry] = []

    def add(self, entry: AuditEntry) -> None:
        self.pending.append(entry if entry.at else replace(entry, at=self.clock.now()))


class InMemoryJournalTrail(JournalTrail):
    """Journal entries of a unit of work: ``pending`` until it commits, then ``committed``.

    ``commits`` records, per commit, the entries it carried, so a test can tell which
    entries were written together with which effects.
    """

    def __init__(self) -> None:
        self.committed: list[JournalEntry] = []
        self.pending: list[JournalEntry] = []
        self.commits: list[list[JournalEntry]] = []

    def add(self, entries: builtins.list[JournalEntry]) -> None:
        self.pending.extend(entries)


class InMemoryAuditLog(AuditLog):
    """The audit log in a list; ``records`` in the order written."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.records: list[AuditRecord] = []

    def append(self, entry: AuditEntry) -> None:
        stamped = entry if entry.at else replace(entry, at=self.clock.now())
        self.records.append(AuditRecord(len(self.records) + 1, stamped))

    def query(self, *, member_id: str | None = None, actor: str | None = None,
              action: str | None = None, since: datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        found = [r for r in self.records
                 if (member_id is None or r.entry.member_id == member_id)
                 and (actor is None or matches_filter(r.entry.actor, actor))
                 and (action is None or matches_filter(r.entry.action, action))
                 and (since is None or r.at >= since)]
        return sorted(found, key=lambda r: (r.at, r.id), reverse=True)[:limit]


class InMemoryStaffDirectory(StaffDirectory):
    """Staff in dictionaries, keeping only token digests (the port's rules do the rest)."""

    def __init__(self, clock: Clock | None = None, ids: IdSource | None = None) -> None:
        super().__init__(clock or FixedClock(), ids or SequentialIds())
        self.entries: dict[str, StaffEntry] = {}
        self.digests: dict[str, str] = {}  # digest -> staff id: all that is kept of a token

    def list(self) -> builtins.list[StaffEntry]:
        return sorted(self.entries.values(), key=lambda e: (e.created_at, e.id))

    def _find(self, name_or_id: str) -> StaffEntry | None:
        return self.entries.get(name_or_id) or next(
            (e for e in self.entries.values() if e.name == name_or_id), None)

    def _find_by_digest(self, digest: str) -> tuple[StaffEntry, str] | None:
        staff_id = self.digests.get(digest)
        return None if staff_id is None else (self.entries[staff_id], digest)

    def _insert(self, entry: StaffEntry, digest: str) -> None:
        if any(e.name == entry.name for e in self.entries.values()) or digest in self.digests:
            raise Conflict(f"a staff member named {entry.name!r} exists already")
        self.entries[entry.id] = entry
        self.digests[digest] = entry.id

    def _set_revoked(self, entry: StaffEntry) -> None:
        self.entries[entry.id] = entry


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over shared in-memory stores; rollback discards what was pending.

    The index itself is not transactional here: the handlers check before they change, which
    is what the unit tests verify; transactional rollback of the index is tested on SQL.
    """

    def __init__(self, mpi: InMemoryMpiRepository | None = None,
                 inbox: InMemoryInbox | None = None, outbox: InMemoryOutbox | None = None,
                 members: InMemoryMemberRepository | None = None,
                 notifications: InMemoryNotifications | None = None,
                 audit: InMemoryAuditTrail | None = None,
                 journal: InMemoryJournalTrail | None = None) -> None:
        self.mpi = mpi or InMemoryMpiRepository()
        self.inbox = inbox or InMemoryInbox()
        self.outbox = outbox or InMemoryOutbox()
        self.members = members or InMemoryMemberRepository()
        self.notifications = notifications or InMemoryNotifications()
        self.audit = audit or InMemoryAuditTrail()
        self.journal = journal or InMemoryJournalTrail()
        self.commits = 0

    def commit(self) -> None:
        assert isinstance(self.inbox, InMemoryInbox) and isinstance(self.outbox, InMemoryOutbox)
        assert isinstance(self.audit, InMemoryAuditTrail)
        assert isinstance(self.journal, InMemoryJournalTrail)
        self.inbox.committed.update(self.inbox.pending)
        self.outbox.commit()
        assert isinstance(self.notifications, InMemoryNotifications)
        self.notifications.committed.extend(self.notifications.pending)
        self.audit.committed.extend(self.audit.pending)
        self.journal.committed.extend(self.journal.pending)
        self.journal.commits.append(list(self.journal.pending))
        self.commits += 1
        self.close()

    def close(self) -> None:
        assert isinstance(self.inbox, InMemoryInbox) and isinstance(self.outbox, InMemoryOutbox)
        assert isinstance(self.audit, InMemoryAuditTrail)
        assert isinstance(self.journal, InMemoryJournalTrail)
        self.inbox.pending.clear()
        self.outbox.pending.clear()
        assert isinstance(self.notifications, InMemoryNotifications)
        self.notifications.pending.clear()
        self.audit.pending.clear()
        self.journal.pending.clear()


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


class MemoryMailTransport(MailTransport):
    """Keeps delivered mail in a list; ``fail_next`` makes the next deliveries fail."""

    def __init__(self) -> None:
        self.delivered: list[OutgoingMail] = []
        self.failures: list[DeliveryFailed] = []
        self.closed = False

    def fail_next(self, reason: str, *, permanent: bool, times: int = 1) -> None:
        self.failures += [DeliveryFailed(reason, permanent)] * times

    def deliver(self, mail: OutgoingMail) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(mail)

    def close(self) -> None:
        self.closed = True


class MemorySmsGateway(SmsGateway):
    """Keeps the text messages it was given."""

    def __init__(self) -> None:
        self.sent: list[TextMessage] = []

    def send_text(self, message: TextMessage) -> None:
        self.sent.append(message)
