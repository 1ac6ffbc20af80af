"""Writing many rows at once: few statements per table and kind of write.

On PostgreSQL inserts are multi-row ``INSERT ... VALUES`` statements made by us (not by
SQLAlchemy, which compiles one statement per row count): a group's rows in chunks of 64,
32, ..., 1 rows (13 rows: 8 + 4 + 1), so a table has at most seven statement texts, each
prepared once. ``executemany`` sent one statement per row, and in a pipeline psycopg
polls the socket and flushes it after every one (py-spy and strace on ``listen``: 32
polls and 17 sends per message, with the interpreter lock given up and taken back at
each). ``COPY`` cannot join the pipelined commit. Inserts never ask for generated keys
back (``inline``): a pipelined commit cannot wait for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

from psycopg import RawCursor
from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    Insert,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    Update,
    bindparam,
    delete,
    insert,
    update,
)

from mpi.tables import UtcDateTime

__all__ = ["delete_rows", "insert_rows", "update_rows"]

Row = dict[str, Any]


def insert_rows(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``.

    On PostgreSQL the rows go to psycopg as positional values of multi-row inserts, with the
    statement texts made once per table, column list and chunk size: SQLAlchemy's per-row
    parameter processing and psycopg's reordering of named parameters cost a quarter of a
    bulk enrollment's commit, and one statement per row a poll and a send each.
    Values must then already be what the driver takes (aware datetimes, as everywhere here).
    """
    if not rows:
        return
    keys = tuple(rows[0])
    text = _driver_insert(table, keys) if conn.dialect.name == "postgresql" else None
    if text is None:
        conn.execute(_insert(table), list(rows))
        return
    cursor = RawCursor(conn.connection.driver_connection)  # type: ignore[arg-type]
    start = 0
    for size in _chunk_sizes(len(rows)):
        cursor.execute(_many_rows(text, len(keys), size),
                       [row[k] for row in rows[start:start + size] for k in keys])
        start += size


#: Rows of one multi-row insert at most (12 columns: 768 parameters).
_MAX_CHUNK = 64


def _chunk_sizes(count: int) -> list[int]:
    """``count`` as a sum of powers of two no larger than ``_MAX_CHUNK``, largest first."""
    sizes: list[int] = []
    while count:
        size = min(_MAX_CHUNK, 1 << (count.bit_length() - 1))
        sizes.append(size)
        count -= size
    return sizes


@cache
def _many_rows(single: str, width: int, size: int) -> str:
    """The single-row insert ``single`` extended to ``size`` rows of ``width`` values, in the
    server's own placeholders (``$1``): run by a ``RawCursor``, which sends the text as it
    is. psycopg's ``%s`` texts are parsed by a regular expression on every execution once
    they exceed 50 parameters or 4 KB (its cache's limits), which every chunk of four or
    more rows does: 11% of the writer thread's time with 16 MLLP connections."""
    rows = (", ".join(f"${column + 1}" for column in range(start, start + width))
            for start in range(0, width * size, width))
    return single.rsplit(" VALUES ", 1)[0] + " VALUES " + ", ".join(f"({row})" for row in rows)


@cache
def _driver_insert(table: Table, keys: tuple[str, ...]) -> str | None:
    """The statement in psycopg's placeholders, or None when a column needs SQLAlchemy's bind
    processing (our only type decorator, UtcDateTime, just checks for aware datetimes)."""
    if any(isinstance(table.c[k].type, TypeDecorator) and not isinstance(table.c[k].type, UtcDateTime)
           for k in keys):
        return None
    columns = ", ".join(f'"{k}"' for k in keys)
    placeholders = ", ".join(["%s"] * len(keys))
    return f'INSERT INTO "{table.name}" ({columns}) VALUES ({placeholders})'  # noqa: S608 - our metadata


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[Row]) -> None:
    """Update the rows of ``table`` whose ``key`` column matches each row's ``key`` value.

    On PostgreSQL, like ``insert_rows``: one ``UPDATE ... FROM (VALUES ...)`` per chunk of
    rows, in the server's placeholders, without SQLAlchemy's per-row work (``executemany``
    sent one statement per row: with 16 MLLP connections updating patients, ten statements
    a group where two do). Rows naming one key twice go one by one, in their order.
    """
    if not rows:
        return
    keys = tuple(rows[0])
    texts = _driver_updates(table, key, keys) if conn.dialect.name == "postgresql" else None
    if texts is None:
        conn.execute(_update(table, key), [{f"b_{key}": row[key], **row} for row in rows])
        return
    driver = conn.connection.driver_connection
    if texts.many is None or len({row[key] for row in rows}) < len(rows):
        driver.cursor().executemany(  # type: ignore[union-attr]
            texts.single, [(*(row[k] for k in keys), row[key]) for row in rows])
        return
    cursor = RawCursor(driver)  # type: ignore[arg-type]
    start = 0
    for size in _chunk_sizes(len(rows)):
        cursor.execute(_many_updates(texts.many, len(keys), size),
                       [row[k] for row in rows[start:start + size] for k in keys])
        start += size


def delete_rows(conn: Connection, table: Table, key: str, values: Sequence[Any]) -> None:
    """Delete the rows of ``table`` whose ``key`` column holds one of ``values``."""
    if not values:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(delete(table).where(table.c[key].in_(values)))
        return
    # One text whatever the number of values: prepared once, no SQLAlchemy compilation.
    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        f'DELETE FROM "{table.name}" WHERE "{key}" = ANY(%s)', [list(values)])  # noqa: S608


class _Updates(NamedTuple):
    single: str  # one row, psycopg's placeholders
    many: tuple[str, tuple[str, ...]] | None  # the multi-row text around VALUES, each column's cast


@cache
def _driver_updates(table: Table, key: str, keys: tuple[str, ...]) -> _Updates | None:
    """The update's texts, or None where SQLAlchemy's bind processing is needed (as
    ``_driver_insert``); no multi-row text where a column's type is not one we cast."""
    if _driver_insert(table, keys) is None:
        return None
    assignments = ", ".join(f'"{k}" = %s' for k in keys)
    single = f'UPDATE "{table.name}" SET {assignments} WHERE "{key}" = %s'  # noqa: S608 - our metadata
    casts = tuple(_CASTS.get(type(table.c[k].type), "") for k in keys)
    if "" in casts or key not in keys:
        return _Updates(single, None)
    changed = ", ".join(f'"{k}" = v."{k}"' for k in keys if k != key)
    columns = ", ".join(f'"{k}"' for k in keys)
    around = (f'UPDATE "{table.name}" AS t SET {changed} FROM (VALUES %s) AS v ({columns})'  # noqa: S608
              f' WHERE t."{key}" = v."{key}"')
    return _Updates(single, (around, casts))


#: Casts of the values of a multi-row update (a VALUES list has no column types to take):
#: the types without their lengths, so that a value too long fails the assignment as it
#: would in an INSERT, where ``::varchar(64)`` would cut it short.
_CASTS: dict[type, str] = {String: "varchar", Text: "text", Integer: "integer", Boolean: "boolean",
                           UtcDateTime: "timestamptz", DateTime: "timestamptz"}


@cache
def _many_updates(many: tuple[str, tuple[str, ...]], width: int, size: int) -> str:
    """The multi-row update of ``_driver_updates`` for ``size`` rows, in ``$n`` placeholders."""
    around, casts = many
    values = ", ".join("(" + ", ".join(f"${start + n + 1}::{cast}" for n, cast in enumerate(casts)) + ")"
                       for start in range(0, width * size, width))
    return around.replace("%s", values, 1)


@cache
def _insert(table: Table) -> Insert:
    return insert(table).inline()


@cache
def _update(table: Table, key: str) -> Update:
    return update(table).where(table.c[key] == bindparam(f"b_{key}"))
