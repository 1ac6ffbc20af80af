"""Translate the database's errors into the engine's tree, at the edge that calls the library.

Errors arrive wrapped by SQLAlchemy, or straight from psycopg where the store talks to the
driver itself (the pipelined, locked prefetch of ``mpi.locks``). Every one is transient for
the sender (AE, 503, requeue): nothing was committed, and the same input may pass later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from engine.committer import classify_engine_error
from engine.errors import EngineError, StoreUnavailable

__all__ = ["classify_store_error", "store_errors"]

#: Waits that hit a bound (PORTALBRIDGE_DB_LOCK_TIMEOUT, PORTALBRIDGE_DB_STATEMENT_TIMEOUT).
_TIMED_OUT: dict[type[Exception], str] = {
    pg_errors.LockNotAvailable: "another writer held a lock this message needs for longer than "
                                "the lock timeout",
    pg_errors.QueryCanceled: "a database statement ran longer than the statement timeout",
}
#: Two writers' transactions collided; PostgreSQL aborted one. Worth one immediate retry.
_COLLIDED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def classify_store_error(exc: Exception) -> EngineError:
    """What a failed unit of work means for the sender."""
    if isinstance(exc, IntegrityError | psycopg.IntegrityError):
        return StoreUnavailable("another writer stored the same key first", retry_at_once=True)
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(driver_error, psycopg.Error):
        known = _driver_error(driver_error)
        if known is not None:
            return known
    if isinstance(exc, DBAPIError):
        # A connection found dead is replaced at once; one more try is worth it.
        return StoreUnavailable(f"database unavailable ({type(exc.orig).__name__})",
                                retry_at_once=exc.connection_invalidated)
    if isinstance(exc, psycopg.Error):
        return StoreUnavailable(f"database unavailable ({type(exc).__name__})")
    if isinstance(exc, SQLAlchemyError):
        return StoreUnavailable(f"database error ({type(exc).__name__})")
    return classify_engine_error(exc)


def _driver_error(error: psycopg.Error) -> StoreUnavailable | None:
    for kind, reason in _TIMED_OUT.items():
        if isinstance(error, kind):
            return StoreUnavailable(reason)
    if isinstance(error, _COLLIDED):
        return StoreUnavailable(f"a concurrent writer collided with this one "
                                f"({type(error).__name__})", retry_at_once=True)
    return None


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Short transactions outside the committer (staff, audit): database trouble is a
    ``StoreUnavailable`` (HTTP 503), never an unmapped SQLAlchemy error."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"database unavailable ({type(exc.orig).__name__})") from exc
