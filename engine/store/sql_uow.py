"""The unit of work on SQL: one connection, one transaction, bulk writes at commit."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, cast

import orjson
import psycopg
from sqlalchemy import Connection, Engine, select, tuple_
from sqlalchemy.exc import DBAPIError

from engine.commands import MessageOrigin, Outcome
from engine.domain.clock import Clock, SystemClock
from engine.errors import StoreUnavailable
from engine.store.audit import SqlAuditTrail
from engine.store.journal import PayloadPolicy, SqlJournalTrail
from engine.store.members_sql import SqlMemberRepository, SqlNotificationOutbox
from engine.store.sequences import insert_numbered
from engine.store.tables import inbound_messages
from engine.uow import Inbox, Outbox, OutboxMessage, UnitOfWork
from membership.tokens import SecretBox
from mpi.bulk import insert_rows
from mpi.sql import SqlMpiRepository

__all__ = ["SqlUnitOfWork", "WriterConnection"]


class SqlInbox(Inbox):
    """Inbox rows, looked up in bulk and inserted in bulk.

    With ``check=False`` the table is not read: only repeats within this unit of work are
    seen, and a message committed before fails the commit on the table's primary key, which
    sends the caller down its checked path. That saves a round trip for every group.
    """

    def __init__(self, connection: Connection, *, check: bool = True) -> None:
        self._conn = connection
        self._check = check
        self._seen: set[tuple[str, str]] = set()
        self._asked: set[tuple[str, str]] = set()
        self._pending: list[dict[str, Any]] = []

    def prefetch(self, origins: Iterable[MessageOrigin]) -> None:
        keys = list({(o.sender, o.control_id) for o in origins} - self._asked)
        if not keys or not self._check:
            return
        columns = tuple_(inbound_messages.c.sender, inbound_messages.c.control_id)
        rows = self._conn.execute(select(inbound_messages.c.sender, inbound_messages.c.control_id)
                                  .where(columns.in_(keys)))
        self._seen.update((row[0], row[1]) for row in rows)
        self._asked.update(keys)

    def seen(self, origin: MessageOrigin) -> bool:
        key = (origin.sender, origin.control_id)
        if key not in self._asked and self._check:
            self.prefetch([origin])
        return key in self._seen

    def record(self, origin: MessageOrigin, outcome: Outcome, at: datetime) -> None:
        self._seen.add((origin.sender, origin.control_id))
        self._asked.add((origin.sender, origin.control_id))
        self._pending.append({
            "sender": origin.sender, "control_id": origin.control_id, "channel": origin.channel,
            "message_type": origin.message_type, "outcome": outcome.status,
            "patient_ids": ",".join(outcome.patient_ids), "received_at": at,
        })

    def flush(self) -> None:
        insert_rows(self._conn, inbound_messages, self._pending)
        self._pending = []


class SqlOutbox(Outbox):
    """Outbox rows, inserted in bulk at commit and numbered per subject there."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._pending: list[dict[str, Any]] = []

    def add(self, message: OutboxMessage) -> None:
        self._pending.append({
            "event_id": message.event_id, "routing_key": message.routing_key,
            "subject": message.subject, "correlation_id": message.correlation_id,
            "occurred_at": message.occurred_at,
            "data": orjson.dumps(message.data).decode(),
        })

    def flush(self) -> None:
        # Numbered by the database as they are inserted (engine.store.sequences), with
        # nothing read back: a pipelined commit cannot wait for results.
        insert_numbered(self._conn, self._pending)
        self._pending = []


class WriterConnection:
    """One connection per writer thread, kept across units of work.

    Checking a connection out of the pool for every group would cost a pool round trip and,
    with pre-ping, a database round trip; each writer keeps its own and replaces it only
    after a database error (its next unit of work then connects afresh).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()

    def acquire(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                _release(conn)
            conn = self._local.conn = self._engine.connect()
        return conn

    def discard(self) -> None:
        """Give up this thread's connection: the pool closes it and forgets it."""
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            _release(conn, invalidate=True)


def _release(conn: Connection, *, invalidate: bool = False) -> None:
    """Hand ``conn`` back to the pool for good, whatever state a failure left it in.

    An invalidated SQLAlchemy ``Connection`` that is merely dropped is a trap: the next
    touch of ``.connection`` quietly checks a *fresh* connection out of the pool, which
    nothing ever returns. ``close()`` forbids that and returns what the pool lent.
    """
    with contextlib.suppress(DBAPIError):
        if invalidate and not conn.closed and not conn.invalidated:
            conn.invalidate()
    with contextlib.suppress(DBAPIError):
        conn.close()


class SqlUnitOfWork(UnitOfWork):
    """A transaction on one connection. Errors of the database leave it as SQLAlchemy raised
    them (``engine.store.errors.classify_store_error`` says what they mean); whatever
    happens, the connection is rolled back and returned, or discarded.

    Given an ``Engine`` it uses a pooled connection for itself; given a ``WriterConnection``
    it borrows the writer's long-lived one. ``clock`` times audit entries that carry no time;
    ``box`` seals the secrets of notifications; ``journal`` stores the payloads of journal
    entries (a unit of work without one takes none).
    """

    def __init__(self, source: Engine | WriterConnection, *, check_inbox: bool = True,
                 box: SecretBox | None = None, clock: Clock | None = None,
                 journal: PayloadPolicy | None = None) -> None:
        self._writer = source if isinstance(source, WriterConnection) else None
        self._conn: Connection | None = None
        try:
            self._conn = self._writer.acquire() if self._writer else cast(Engine, source).connect()
            self._conn.begin()
        except DBAPIError as exc:
            self._abandon()
            raise StoreUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        self._members = SqlMemberRepository(self._conn)
        self._repo = SqlMpiRepository(self._conn, riders=self._members.riders)
        self._inbox = SqlInbox(self._conn, check=check_inbox)
        self._outbox = SqlOutbox(self._conn)
        self._notifications = SqlNotificationOutbox(self._conn, box)
        self._clock = clock or SystemClock()
        self._audit = SqlAuditTrail(self._conn, self._clock)
        self._journal = SqlJournalTrail(self._conn, journal)
        self.mpi, self.inbox, self.outbox, self.audit = self._repo, self._inbox, self._outbox, self._audit
        self.members, self.notifications, self.journal = self._members, self._notifications, self._journal
        self._open = True

    @property
    def connection(self) -> Connection:
        assert self._conn is not None
        return self._conn

    def commit(self) -> None:
        self._commit(None)

    def commit_overlapping(self, meanwhile: Callable[[], None]) -> None:
        self._commit(meanwhile)

    def _commit(self, meanwhile: Callable[[], None] | None) -> None:
        conn = self.connection
        try:
            # Every write and the COMMIT travel together: one round trip, then the fsync.
            with _pipelined(conn) as driver:
                self._repo.flush()
                self._members.flush(self._clock.now())
                self._inbox.flush()
                self._outbox.flush()
                self._notifications.flush()
                self._audit.flush()
                self._journal.flush()
                if driver is not None:
                    # Sent now and run by the server (fsync included) while ``meanwhile``
                    # runs here; leaving the pipeline waits for every answer, the COMMIT's
                    # among them, and raises the first error. One sync, not psycopg's two
                    # (its commit() syncs, and so does the pipeline's end).
                    driver.execute("COMMIT", prepare=False)
                if meanwhile is not None:
                    meanwhile()
            # SQLAlchemy's side of it; the driver's session is already idle on PostgreSQL.
            conn.commit()
        finally:
            self.close()

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        conn = self.connection
        if conn.closed or conn.invalidated or not _rolled_back(conn):
            self._abandon()  # never touch it again: it would check out a new connection
        elif self._writer is None:
            _release(conn)

    def _abandon(self) -> None:
        """Drop the connection after a failure (the writer connects afresh next time)."""
        if self._writer is not None:
            self._writer.discard()
        elif self._conn is not None:
            _release(self._conn, invalidate=True)


def _rolled_back(conn: Connection) -> bool:
    """Roll back, at SQLAlchemy's level and at the driver's: a failed COMMIT leaves SQLAlchemy
    thinking there is no transaction, while the driver's session is still in an aborted one
    (and a pool that is told "already reset" would lend it out like that). False when the
    connection turned out to be unusable."""
    try:
        conn.rollback()
        dbapi = None if conn.invalidated else conn.connection.dbapi_connection
        if dbapi is not None:
            dbapi.rollback()
    except Exception:  # noqa: BLE001 - a connection in an unknown state is not reused
        return False
    return not conn.invalidated


@contextlib.contextmanager
def _pipelined(connection: Connection) -> Iterator[psycopg.Connection[Any] | None]:
    """On PostgreSQL, send the writes of a commit without waiting for each one's reply; the
    driver's connection, in pipeline mode (None elsewhere)."""
    driver = connection.connection.driver_connection if connection.dialect.name == "postgresql" else None
    if not isinstance(driver, psycopg.Connection):
        yield None
        return
    with driver.pipeline():
        yield driver
