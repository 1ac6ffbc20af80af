"""Column values as PostgreSQL array literals, for set-based writes of a group's rows.

``UPDATE ... FROM unnest($1::varchar[], $2::timestamptz[], ...)`` writes any number of rows
with one statement text per table and column list: prepared once, one statement per table
and group. Each parameter is one string built here, in one pass over the
column's values; psycopg's adaptation of Python lists costs several times more.

The literal syntax: elements between braces, separated by commas; every element that is
not NULL is double-quoted, with backslashes and double quotes escaped, so that no value
(empty, ``NULL``, braces, commas, spaces) can be misread.

Bytes are not written here: as ``bytea``'s hex text they double in size, and the
journal's rows measured slower that way than as binary parameters of multi-row ``VALUES``
(``bench/bench_mllp.py``, 16 connections: 1.56 against 1.38 ms of CPU per message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text
from sqlalchemy.types import TypeEngine

from mpi.tables import UtcDateTime

__all__ = ["NotArrayable", "array_literal", "element_kind", "text_element"]

Element = Callable[[Any], str]


class NotArrayable(TypeError):
    """A value this module does not write (the caller then binds values one by one)."""


def text_element(value: Any) -> str:
    if not isinstance(value, str):
        raise NotArrayable(type(value).__name__)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _integer(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotArrayable(type(value).__name__)
    return str(value)


def _boolean(value: Any) -> str:
    if not isinstance(value, bool):
        raise NotArrayable(type(value).__name__)
    return "t" if value else "f"


def _stamp(value: Any) -> str:
    if not isinstance(value, datetime):
        raise NotArrayable(type(value).__name__)
    if value.tzinfo is None:
        raise ValueError("portalbridge stores aware datetimes only")
    return '"' + value.isoformat() + '"'


#: (SQLAlchemy type, SQL element type, element writer): the first match wins.
_KINDS: tuple[tuple[type[TypeEngine[Any]], str, Element], ...] = (
    (UtcDateTime, "timestamptz", _stamp),
    (DateTime, "timestamptz", _stamp),
    (Text, "text", text_element),
    (String, "varchar", text_element),  # no length: a value too long fails the assignment, not cut
    (Boolean, "boolean", _boolean),
    (BigInteger, "bigint", _integer),
    (Integer, "integer", _integer),
)


def element_kind(column_type: TypeEngine[Any]) -> tuple[str, Element] | None:
    """The SQL element type and writer for a column of this type; None if not supported."""
    for python_type, sql_type, element in _KINDS:
        if isinstance(column_type, python_type):
            return sql_type, element
    return None


def array_literal(values: Iterable[Any], element: Element) -> str:
    """``values`` as one array literal; raises ``NotArrayable`` for a value of another type."""
    return "{" + ",".join("NULL" if value is None else element(value) for value in values) + "}"
