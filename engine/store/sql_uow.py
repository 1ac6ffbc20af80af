"""The unit of work on SQL: one connection, one transaction, bulk writes at commit."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine.commands import MessageOrigin, Outcome
from engine.errors import StoreUnavailable
from engine.store.tables import inbound_messages, outbox
from engine.uow import Inbox, Outbox, OutboxMessage, UnitOfWork
from mpi.sql import SqlMpiRepository

__all__ = ["SqlUnitOfWork"]


class SqlInbox(Inbox):
    """Inbox rows, looked up in bulk and inserted in bulk."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._seen: set[tuple[str, str]] = set()
        self._asked: set[tuple[str, str]] = set()
        self._pending: list[dict[str, Any]] = []

    def prefetch(self, origins: Iterable[MessageOrigin]) -> None:
        keys = list({(o.sender, o.control_id) for o in origins} - self._asked)
        if not keys:
            return
        columns = tuple_(inbound_messages.c.sender, inbound_messages.c.control_id)
        rows = self._conn.execute(select(inbound_messages.c.sender, inbound_messages.c.control_id)
                                  .where(columns.in_(keys)))
        self._seen.update((row[0], row[1]) for row in rows)
        self._asked.update(keys)

    def seen(self, origin: MessageOrigin) -> bool:
        key = (origin.sender, origin.control_id)
        if key not in self._asked:
            self.prefetch([origin])
        return key in self._seen

    def record(self, origin: MessageOrigin, outcome: Outcome, at: datetime) -> None:
        self._seen.add((origin.sender, origin.control_id))
        self._asked.add((origin.sender, origin.control_id))
        self._pending.append({
            "sender": origin.sender, "control_id": origin.control_id, "channel": origin.channel,
            "message_type": origin.message_type[:32], "outcome": outcome.status,
            "patient_ids": ",".join(outcome.patient_ids), "received_at": at,
        })

    def flush(self) -> None:
        if self._pending:
            self._conn.execute(insert(inbound_messages), self._pending)
            self._pending = []


class SqlOutbox(Outbox):
    """Outbox rows, inserted in bulk at commit."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._pending: list[dict[str, Any]] = []

    def add(self, message: OutboxMessage) -> None:
        self._pending.append({
            "event_id": message.event_id, "routing_key": message.routing_key,
            "subject": message.subject, "sequence": message.sequence,
            "correlation_id": message.correlation_id[:200], "occurred_at": message.occurred_at,
            "data": json.dumps(message.data, separators=(",", ":"), ensure_ascii=False),
        })

    def flush(self) -> None:
        if self._pending:
            self._conn.execute(insert(outbox), self._pending)
            self._pending = []


class SqlUnitOfWork(UnitOfWork):
    """A transaction on one pooled connection; database errors become ``StoreUnavailable``."""

    def __init__(self, engine: Engine) -> None:
        try:
            self._conn = engine.connect()
            self._conn.begin()
        except DBAPIError as exc:
            raise StoreUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        self._repo = SqlMpiRepository(self._conn)
        self._inbox = SqlInbox(self._conn)
        self._outbox = SqlOutbox(self._conn)
        self.mpi, self.inbox, self.outbox = self._repo, self._inbox, self._outbox
        self._open = True

    @property
    def connection(self) -> Connection:
        return self._conn

    def commit(self) -> None:
        try:
            self._repo.flush()
            self._inbox.flush()
            self._outbox.flush()
            self._conn.commit()
        except IntegrityError:
            raise  # a concurrent writer took a key first: the caller retries one by one
        except DBAPIError as exc:
            raise StoreUnavailable(f"commit failed: {type(exc.orig).__name__}") from exc
        finally:
            self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            # Closing rolls back anything uncommitted; if the connection is already gone,
            # nothing was committed either.
            with contextlib.suppress(DBAPIError):
                self._conn.close()
