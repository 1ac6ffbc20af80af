"""Writing many rows at once: one ``executemany`` per table and kind of write.

Measured on PostgreSQL with psycopg 3 (bench notes in the README): ``executemany`` beat an
``INSERT ... SELECT FROM unnest(arrays)`` (psycopg dumps string arrays slowly) and a
multi-row ``VALUES`` (SQLAlchemy compiles one statement per row count); ``COPY`` was no
faster and cannot join the pipelined commit. Inserts never ask for generated keys back
(``inline``): a pipelined commit cannot wait for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, Table, Update, bindparam, insert, update

__all__ = ["insert_rows", "update_rows"]

Row = dict[str, Any]


def insert_rows(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if rows:
        conn.execute(_insert(table), list(rows))


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[Row]) -> None:
    """Update the rows of ``table`` whose ``key`` column matches each row's ``key`` value."""
    if rows:
        conn.execute(_update(table, key), [{f"b_{key}": row[key], **row} for row in rows])


@cache
def _insert(table: Table) -> Insert:
    return insert(table).inline()


@cache
def _update(table: Table, key: str) -> Update:
    return update(table).where(table.c[key] == bindparam(f"b_{key}"))
