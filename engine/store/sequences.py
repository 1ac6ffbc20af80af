"""Outbox rows numbered per subject by the database, inside the unit of work's transaction.

Every subject (a patient, a member, ...) has a counter row in ``subject_sequences``. Writing
an outbox row bumps its subject's counter and takes the new value as the row's
``sequence``. The counter row stays locked until the transaction ends, so a second writer
of the same subject waits at that statement until the first has committed, then goes on
from the first's last number. Hence, whatever number of writer threads and processes run:

* one subject's numbers never repeat and never skip (a rolled-back transaction gives its
  numbers back with everything else);
* one subject's outbox ids rise in commit order, because each row's id is drawn after its
  counter was locked: a relay reading in id order never sees a later event of a subject
  before an earlier one has committed (``outbound.outbox_store`` relies on this).

On PostgreSQL each row is one statement (a data-modifying CTE, then the insert selecting
from it, so the id is drawn after the lock) sent with ``executemany``: it joins the unit of
work's pipelined commit and costs no round trip of its own. Rows go in subject order (each
subject's rows keeping their order), so two units of work bumping the same counters lock
them in the same order and cannot deadlock; only one subject's order matters to the relay.
SQLite has one writer at a time, so the counters are simply read back and the rows inserted
with their numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from engine.store.tables import outbox

__all__ = ["insert_numbered"]

Row = dict[str, Any]

_NUMBERED_INSERT_PG = text(
    "WITH counter AS ("
    " INSERT INTO subject_sequences AS c (subject, last_sequence) VALUES (:subject, 1)"
    " ON CONFLICT (subject) DO UPDATE SET last_sequence = c.last_sequence + 1"
    " RETURNING c.last_sequence)"
    " INSERT INTO outbox (event_id, routing_key, subject, sequence, correlation_id, occurred_at, data)"
    " SELECT CAST(:event_id AS varchar), CAST(:routing_key AS varchar), CAST(:subject AS varchar),"
    " counter.last_sequence, CAST(:correlation_id AS varchar), CAST(:occurred_at AS timestamptz),"
    " CAST(:data AS text) FROM counter"
)

_BUMP = text(
    "INSERT INTO subject_sequences (subject, last_sequence) VALUES (:subject, :count)"
    " ON CONFLICT (subject) DO UPDATE SET last_sequence = last_sequence + excluded.last_sequence"
    " RETURNING last_sequence"
)


def insert_numbered(conn: Connection, rows: Sequence[Row]) -> None:
    """Insert outbox ``rows`` (dicts without ``sequence``), numbering each subject's rows in
    the order given, after the numbers its earlier committed rows took."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_NUMBERED_INSERT_PG, sorted(rows, key=lambda row: row["subject"]))  # stable
        return
    # SQLite: one writer at a time, so a subject's numbers can be reserved in one step.
    following: dict[str, int] = {}
    for subject, count in Counter(row["subject"] for row in rows).items():
        last = conn.execute(_BUMP, {"subject": subject, "count": count}).scalar_one()
        following[subject] = last - count + 1
    numbered: list[Row] = []
    for row in rows:
        numbered.append({**row, "sequence": following[row["subject"]]})
        following[row["subject"]] += 1
    conn.execute(outbox.insert(), numbered)
