"""Writing many rows at once: few statements per table and kind of write.

On PostgreSQL inserts are multi-row ``INSERT ... VALUES`` statements made by us (not by
SQLAlchemy, which compiles one statement per row count): a group's rows in chunks of 64,
32, ..., 1 rows (13 rows: 8 + 4 + 1), so a table has at most seven statement texts, each
prepared once. Updates are one ``UPDATE ... FROM unnest(...)`` per table and group, with one
array literal per column (``mpi.arrays``): one text whatever the number of rows.
``executemany`` sent one statement per row, and in a pipeline psycopg polls the socket and
flushes it after every one (py-spy and strace on ``listen``: 32 polls and 17 sends per
message). Inserts from array literals too measured no faster than the chunks (the literals
cost what the statements saved), so inserts keep them. ``COPY`` cannot join the pipelined
commit. Inserts never ask for generated keys back (``inline``): a pipelined commit cannot
wait for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

from psycopg import RawCursor
from sqlalchemy import Connection, Insert, Table, TypeDecorator, Update, bindparam, delete, insert, update

from mpi.arrays import Element, NotArrayable, array_literal, element_kind
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


def _literals(rows: Sequence[Row], keys: tuple[str, ...], elements: tuple[Element, ...]) -> list[str] | None:
    """One array literal per column of ``rows``; None if a value is not one arrays carry."""
    try:
        return [array_literal([row[k] for row in rows], element)
                for k, element in zip(keys, elements, strict=True)]
    except NotArrayable:
        return None


@cache
def _unnested(table: Table, keys: tuple[str, ...]) -> tuple[str, tuple[Element, ...]] | None:
    """``unnest($1::varchar[], ...)`` over these columns of ``table`` and each column's
    element writer; None when a column's type has no array form here."""
    kinds = [element_kind(table.c[k].type) for k in keys]
    if any(kind is None for kind in kinds):
        return None
    arrays = ", ".join(f"${n + 1}::{kind[0]}[]" for n, kind in enumerate(kinds) if kind is not None)
    return f"unnest({arrays})", tuple(kind[1] for kind in kinds if kind is not None)


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

    On PostgreSQL, like ``insert_rows``: one ``UPDATE ... FROM unnest(...)`` with an array
    literal per column, without SQLAlchemy's per-row work (``executemany`` sent one statement
    per row: with 16 MLLP connections updating patients, ten statements a group where two
    do). Rows naming one key twice, or holding a value arrays do not carry, go one by one.
    """
    if not rows:
        return
    keys = tuple(rows[0])
    texts = _driver_updates(table, key, keys) if conn.dialect.name == "postgresql" else None
    if texts is None:
        conn.execute(_update(table, key), [{f"b_{key}": row[key], **row} for row in rows])
        return
    driver = conn.connection.driver_connection
    literals = (_literals(rows, keys, texts.elements) if texts.many is not None
                and len({row[key] for row in rows}) == len(rows) else None)
    if literals is None:
        driver.cursor().executemany(  # type: ignore[union-attr]
            texts.single, [(*(row[k] for k in keys), row[key]) for row in rows])
        return
    RawCursor(driver).execute(texts.many, literals)  # type: ignore[arg-type]


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
    many: str | None  # every row, from array literals (None: a column has no array form)
    elements: tuple[Element, ...]  # each column's element writer, with ``many``


@cache
def _driver_updates(table: Table, key: str, keys: tuple[str, ...]) -> _Updates | None:
    """The update's texts, or None where SQLAlchemy's bind processing is needed (as
    ``_driver_insert``)."""
    if _driver_insert(table, keys) is None:
        return None
    assignments = ", ".join(f'"{k}" = %s' for k in keys)
    single = f'UPDATE "{table.name}" SET {assignments} WHERE "{key}" = %s'  # noqa: S608 - our metadata
    unnested = _unnested(table, keys)
    if unnested is None or key not in keys:
        return _Updates(single, None, ())
    arrays = unnested[0]
    changed = ", ".join(f'"{k}" = v."{k}"' for k in keys if k != key)
    columns = ", ".join(f'"{k}"' for k in keys)
    many = (f'UPDATE "{table.name}" AS t SET {changed} FROM {arrays} AS v ({columns})'  # noqa: S608
            f' WHERE t."{key}" = v."{key}"')
    return _Updates(single, many, unnested[1])


@cache
def _insert(table: Table) -> Insert:
    return insert(table).inline()


@cache
def _update(table: Table, key: str) -> Update:
    return update(table).where(table.c[key] == bindparam(f"b_{key}"))
