"""The message journal on SQL: table ``message_journal``, written by units of work, read and
swept outside them.

Payloads and responses are stored as ``PayloadPolicy`` says; each row records the form it
was stored in, so rows stay readable after ``journal.payloads`` changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, Select, String, delete, select

from engine.errors import ConfigurationError
from engine.journal import JournalEntry, JournalQuery, JournalRecord, JournalStore, JournalTrail, PayloadForm
from engine.sealing import Sealer
from engine.store.audit import text_filter
from engine.store.errors import store_errors
from engine.store.tables import message_journal
from mpi.bulk import insert_rows
from mpi.limits import first_unstorable

__all__ = ["PayloadPolicy", "SqlJournalStore", "SqlJournalTrail"]

_PAYLOAD, _RESPONSE = b"journal.payload", b"journal.response"
_T = message_journal.c
_SUMMARY = [c for c in message_journal.c if c.name not in ("payload", "response")]
_CLEAR_TEXT = ("channel", "sender", "control_id", "message_type", "outcome", "error_code",
               "error_location")


class PayloadPolicy:
    """How payloads go in (``form``) and come back out (by the form each row was stored in)."""

    def __init__(self, form: PayloadForm, sealer: Sealer) -> None:
        self.form: PayloadForm = form
        self._sealer = sealer

    def stored(self, value: bytes | None, what: bytes) -> bytes | None:
        if value is None or self.form == "omit":
            return None
        return self._sealer.seal(value, what) if self.form == "encrypt" else value

    def opened(self, value: bytes | None, form: str, what: bytes) -> bytes | None:
        if value is None:
            return None
        return self._sealer.open(value, what) if form == "encrypt" else value


#: Column widths of the text the journal keeps in the clear.
_WIDTHS = {c.name: c.type.length for c in message_journal.c
           if isinstance(c.type, String) and c.type.length}


def _text(entry: JournalEntry, name: str) -> str:
    """A text field as its column can hold it: cut to width, and a character no database
    stores (NUL, a lone surrogate: the sender's bytes may hold them) replaced, so an entry
    never fails the commit it rides in."""
    value: str = getattr(entry, name)[:_WIDTHS[name]]
    if first_unstorable(value) is None:
        return value
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _row(entry: JournalEntry, policy: PayloadPolicy) -> dict[str, Any]:
    """The row of ``entry``, its payloads stored as ``policy`` says."""
    return {
        **{name: _text(entry, name) for name in _CLEAR_TEXT}, "received_at": entry.received_at,
        "effects": orjson.dumps(entry.effects).decode(), "payload_form": policy.form,
        "payload": policy.stored(entry.payload, _PAYLOAD),
        "response": policy.stored(entry.response, _RESPONSE),
        "reprocess_of": entry.reprocess_of,
    }


class SqlJournalTrail(JournalTrail):
    """Entries of one unit of work, sealed and inserted in bulk with its other writes."""

    def __init__(self, connection: Connection, policy: PayloadPolicy | None) -> None:
        self._conn = connection
        self._policy = policy
        self._pending: list[dict[str, Any]] = []

    def add(self, entries: list[JournalEntry]) -> None:
        if self._policy is None:
            raise RuntimeError("this unit of work was made without a journal policy")
        policy = self._policy
        self._pending.extend(_row(entry, policy) for entry in entries)

    def flush(self) -> None:
        insert_rows(self._conn, message_journal, self._pending)
        self._pending = []


class SqlJournalStore(JournalStore):
    """Reads and the retention sweep, each in short transactions of their own."""

    def __init__(self, database: Engine, policy: PayloadPolicy) -> None:
        self._db = database
        self._policy = policy

    def query(self, query: JournalQuery, *, payloads: bool = False) -> list[JournalRecord]:
        columns = list(message_journal.c) if payloads else _SUMMARY
        statement: Select[Any] = select(*columns)
        for condition in _conditions(query):
            statement = statement.where(condition)
        statement = statement.order_by(_T.id.desc()).limit(query.limit)
        with store_errors(), self._db.connect() as conn:
            rows = conn.execute(statement).all()
        return [self._record(row._mapping) for row in rows]

    def get(self, row_id: int) -> JournalRecord | None:
        with store_errors(), self._db.connect() as conn:
            row = conn.execute(select(message_journal).where(_T.id == row_id)).first()
        return self._record(row._mapping) if row is not None else None

    def purge(self, before: datetime, *, batch: int = 5000) -> int:
        oldest = select(_T.id).where(_T.received_at < before).order_by(_T.id).limit(batch)
        removed = 0
        while True:
            # Short transactions: a sweep never holds the table for long.
            with store_errors(), self._db.begin() as conn:
                count = conn.execute(delete(message_journal).where(
                    _T.id.in_(oldest.scalar_subquery()))).rowcount
            removed += count
            if count < batch:
                return removed

    def _record(self, row: Any) -> JournalRecord:
        form = cast(PayloadForm, row["payload_form"])
        try:
            payload = self._policy.opened(row.get("payload"), form, _PAYLOAD)
            response = self._policy.opened(row.get("response"), form, _RESPONSE)
        except ValueError as exc:
            raise ConfigurationError(f"journal row {row['id']}: its payload cannot be opened "
                                     f"with this PORTALBRIDGE_SECRET_KEY ({exc})") from None
        entry = JournalEntry(
            channel=row["channel"], sender=row["sender"], control_id=row["control_id"],
            message_type=row["message_type"], received_at=row["received_at"],
            outcome=row["outcome"], error_code=row["error_code"],
            error_location=row["error_location"], effects=orjson.loads(row["effects"]),
            payload=payload, response=response, reprocess_of=row["reprocess_of"])
        return JournalRecord(row["id"], entry, form)


def _conditions(query: JournalQuery) -> Iterable[ColumnElement[bool]]:
    if query.since is not None:
        yield _T.received_at >= query.since
    if query.outcome:
        yield text_filter(_T.outcome, query.outcome)
    if query.sender:
        yield text_filter(_T.sender, query.sender)
    if query.channel:
        yield _T.channel == query.channel
    if query.control_id:
        yield _T.control_id == query.control_id
    if query.reprocess_of is not None:
        yield _T.reprocess_of == query.reprocess_of

