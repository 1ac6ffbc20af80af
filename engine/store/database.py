"""Opening the database: one SQLAlchemy Engine per process, tuned per dialect."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from engine.config import DatabaseTimeouts

__all__ = ["is_sqlite", "open_database"]


def open_database(url: str, *, pool_size: int = 8,
                  timeouts: DatabaseTimeouts | None = None) -> Engine:
    """An Engine for ``url``; ``postgresql://`` URLs use psycopg 3, the driver we ship.

    ``timeouts`` bound every wait on the database (PostgreSQL: ``statement_timeout`` and
    ``lock_timeout`` of every session and the connect timeout; SQLite: the busy timeout).
    Without them only the connect timeout applies (the defaults of ``DatabaseTimeouts``).

    ``hide_parameters``: SQLAlchemy's errors (and its statement log) otherwise carry the
    bound values, which are patient data.
    """
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed, timeouts.lock if timeouts else 30.0)
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         hide_parameters=True, connect_args=_postgres_options(parsed, timeouts))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _postgres_options(url: URL, timeouts: DatabaseTimeouts | None) -> dict[str, Any]:
    # libpq takes whole seconds (and treats less than 2 as 2).
    connect = math.ceil((timeouts or DatabaseTimeouts()).connect)
    if timeouts is None:
        return {"connect_timeout": connect}
    session = (f"-c statement_timeout={_milliseconds(timeouts.statement)}"
               f" -c lock_timeout={_milliseconds(timeouts.lock)}")
    given = url.query.get("options")
    options = f"{given} {session}" if isinstance(given, str) else session
    return {"connect_timeout": connect, "options": options}


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _sqlite(url: URL, lock_timeout: float) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    # An in-memory database lives as long as its one connection: share that connection.
    extra: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": lock_timeout},
                           hide_parameters=True, **extra)

    def tune(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the HTTP readers run beside the single writer; FULL keeps every commit
        # durable, because an ACK promises the message survives a power cut.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={_milliseconds(lock_timeout)}")
        cursor.close()

    event.listen(engine, "connect", tune)
    return engine
