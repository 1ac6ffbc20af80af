"""Claiming outbox rows from SQL: several relays on PostgreSQL, one relay on SQLite.

PostgreSQL. Subjects (patients, members) are spread over ``PARTITIONS`` partitions by a hash
of the subject. A claim is one transaction that first takes transaction-scoped advisory
locks on up to ``PARTITIONS_PER_CLAIM`` free partitions (``pg_try_advisory_xact_lock``,
starting at a rotating offset), then selects the due pending rows of those partitions in id
order ``FOR UPDATE SKIP LOCKED``, and keeps both locks until the rows are marked, in the same
commit. So one subject's rows are only ever in flight in one relay, and a relay that takes a
partition next sees the rows before it already marked: per subject, events leave in commit
order (each subject's sequence counter, locked by the unit of work until it commits, makes
id order the commit order per subject: ``engine.store.sequences``)
and no row is published twice while relays and the database stay up. Several relays share
the partitions; one relay sweeps them all in ``PARTITIONS / PARTITIONS_PER_CLAIM`` claims.

SQLite has one writer and no row locks: run one relay (embedded ``serve`` does). Rows are
read, published, then marked in a short write transaction so the listener is not blocked
while the broker confirms.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from engine.store.database import is_sqlite
from engine.store.errors import classify_store_error
from engine.store.tables import outbox
from outbound.ports import Claim, OutboxRow, OutboxStore, RowFailure

__all__ = ["COLUMNS", "PARTITIONS", "PARTITIONS_PER_CLAIM", "open_outbox_store", "row_from"]

PARTITIONS = 64  # a power of two: the partition is ``hashtext(subject) & (PARTITIONS - 1)``
PARTITIONS_PER_CLAIM = 16  # so four relays can be busy at once
LOCK_NAMESPACE = 0x5042  # first key of our advisory locks ("PB"); the second is the partition

COLUMNS = (outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.subject,
            outbox.c.sequence, outbox.c.correlation_id, outbox.c.occurred_at, outbox.c.data,
            outbox.c.attempts, outbox.c.status, outbox.c.last_error)


def row_from(row: Sequence[Any]) -> OutboxRow:
    """An :class:`OutboxRow` from a result row of ``COLUMNS``."""
    return OutboxRow(id=row[0], event_id=row[1], routing_key=row[2], subject=row[3],
                     sequence=row[4], correlation_id=row[5], occurred_at=row[6], data=row[7],
                     attempts=row[8], status=row[9], last_error=row[10])


def open_outbox_store(engine: Engine) -> SqlOutboxStore:
    """The store for ``engine``'s dialect."""
    return SqliteOutboxStore(engine) if is_sqlite(engine) else PostgresOutboxStore(engine)


class _SqlClaim(Claim):
    def __init__(self, connection: Connection, rows: list[OutboxRow]) -> None:
        self._conn = connection
        self.rows = rows

    def settle(self, sent: Sequence[int], unrouted: Sequence[int],
               failures: Sequence[RowFailure], at: datetime) -> None:
        for status, ids in (("sent", sent), ("unrouted", unrouted)):
            if ids:
                self._conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
                    status=status, sent_at=at, next_attempt_at=None))
        for failure in failures:
            self._conn.execute(update(outbox).where(outbox.c.id == failure.row_id).values(
                attempts=outbox.c.attempts + 1, last_error=failure.error,
                next_attempt_at=failure.retry_at, status="dead" if failure.dead else "pending"))


class SqlOutboxStore(OutboxStore):
    """Shared by both dialects: the due-rows query."""

    #: Consecutive empty claims after which every partition was looked at.
    claims_per_sweep = 1

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def _due(conn: Connection, limit: int, now: datetime) -> Select[Any]:
        """Pending rows that are due, in id order, skipping every subject with a row that
        waits for its retry: its later rows must not overtake it (and must not fill the
        claim's limit while they wait)."""
        query = (select(*COLUMNS)
                 .where(outbox.c.status == "pending",
                        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))
                 .order_by(outbox.c.id).limit(limit))
        waiting = conn.execute(  # answered from the partial index ix_outbox_retrying
            select(outbox.c.subject).distinct()
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at.is_not(None),
                   outbox.c.next_attempt_at > now)).scalars().all()
        return query.where(outbox.c.subject.not_in(waiting)) if waiting else query

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc


class PostgresOutboxStore(SqlOutboxStore):
    """Partitioned claims with advisory locks and ``FOR UPDATE SKIP LOCKED`` (module doc)."""

    claims_per_sweep = PARTITIONS // PARTITIONS_PER_CLAIM

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._offset = random.randrange(PARTITIONS)  # noqa: S311 - spreading, not secrecy

    @contextmanager
    def claim(self, limit: int, now: datetime) -> Iterator[Claim]:
        with self._translated(), self._engine.connect() as conn, conn.begin():
            partitions = self._lock_partitions(conn)
            rows: list[OutboxRow] = []
            if partitions:
                query = (self._due(conn, limit, now)
                         .where(func.hashtext(outbox.c.subject).op("&")(PARTITIONS - 1)
                                .in_(partitions))
                         .with_for_update(skip_locked=True))
                rows = [row_from(r) for r in conn.execute(query)]
            yield _SqlClaim(conn, rows)

    def _lock_partitions(self, conn: Connection) -> list[int]:
        order = [(self._offset + i) % PARTITIONS for i in range(PARTITIONS)]
        self._offset = (self._offset + PARTITIONS_PER_CLAIM) % PARTITIONS
        # The filter runs in array order and stops at the limit: we lock no more than we use.
        found = conn.execute(text(
            "SELECT p FROM unnest(CAST(:order AS integer[])) AS p "
            "WHERE pg_try_advisory_xact_lock(:ns, p) LIMIT :cap"),
            {"order": order, "ns": LOCK_NAMESPACE, "cap": PARTITIONS_PER_CLAIM})
        return [row[0] for row in found]


class SqliteOutboxStore(SqlOutboxStore):
    """One relay: read, publish outside any transaction, mark in a short write."""

    @contextmanager
    def claim(self, limit: int, now: datetime) -> Iterator[Claim]:
        with self._translated(), self._engine.connect() as conn:
            rows = [row_from(r) for r in conn.execute(self._due(conn, limit, now))]
            conn.rollback()  # end the read so the listener's writes are not held up
            yield _SqlClaim(conn, rows)
            conn.commit()
