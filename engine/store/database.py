"""Opening the database: one SQLAlchemy Engine per process, tuned per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

__all__ = ["is_sqlite", "open_database"]


def open_database(url: str, *, pool_size: int = 8) -> Engine:
    """An Engine for ``url``; ``postgresql://`` URLs use psycopg 3, the driver we ship.

    ``hide_parameters``: SQLAlchemy's errors (and its statement log) otherwise carry the
    bound values, which are patient data.
    """
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        # An in-memory database lives as long as its one connection: share that connection.
        extra: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True, **extra)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         hide_parameters=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the HTTP readers run beside the single writer; FULL keeps every commit durable,
    # because an ACK promises the message survives a power cut.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
