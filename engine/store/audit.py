"""The audit log on SQL: table ``audit_log``, written by a unit of work or on its own.

Nothing here updates or deletes a row; migration 0004's triggers refuse both anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Column, ColumnElement, Connection, Engine, Select, insert, select

from engine.audit import AuditEntry, AuditLog, AuditRecord, AuditTrail
from engine.domain.clock import Clock
from engine.store.errors import store_errors
from engine.store.tables import audit_log
from mpi.bulk import insert_rows

__all__ = ["SqlAuditLog", "SqlAuditTrail"]

_ENTRY_FIELDS = ("actor", "action", "outcome", "reason", "member_id", "patient_id")


def _audit_row(entry: AuditEntry, clock: Clock) -> dict[str, Any]:
    """The ``audit_log`` row of ``entry``; its time from ``clock`` when it has none."""
    row = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    row["at"] = entry.at or clock.now()
    row["detail"] = orjson.dumps(dict(entry.detail), option=orjson.OPT_SORT_KEYS).decode()
    return row


class SqlAuditTrail(AuditTrail):
    """Entries of one unit of work, inserted in bulk with its other writes at commit."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        self._conn = connection
        self._clock = clock
        self._pending: list[dict[str, Any]] = []

    def add(self, entry: AuditEntry) -> None:
        self._pending.append(_audit_row(entry, self._clock))

    def flush(self) -> None:
        insert_rows(self._conn, audit_log, self._pending)
        self._pending = []


class SqlAuditLog(AuditLog):
    """The audit log outside units of work: one short transaction per entry."""

    def __init__(self, database: Engine, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def append(self, entry: AuditEntry) -> None:
        with store_errors(), self._db.begin() as conn:
            conn.execute(insert(audit_log), _audit_row(entry, self._clock))

    def query(self, *, member_id: str | None = None, actor: str | None = None,
              action: str | None = None, since: datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        query: Select[Any] = select(audit_log)
        if member_id is not None:
            query = query.where(audit_log.c.member_id == member_id)
        if actor is not None:
            query = query.where(_text_filter(audit_log.c.actor, actor))
        if action is not None:
            query = query.where(_text_filter(audit_log.c.action, action))
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        query = query.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
        with store_errors(), self._db.connect() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]


def _text_filter(column: Column[Any], wanted: str) -> ColumnElement[bool]:
    """Exact, or by prefix for a trailing ``*`` (the rule of ``AuditLog.query``)."""
    if wanted.endswith("*"):
        return column.startswith(wanted[:-1], autoescape=True)
    return column == wanted


def _record(row: Any) -> AuditRecord:
    entry = AuditEntry(**{name: row[name] for name in _ENTRY_FIELDS}, at=row["at"],
                       detail=orjson.loads(row["detail"]))
    return AuditRecord(row["id"], entry)
