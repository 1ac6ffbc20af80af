"""Translate the database's errors into the engine's tree, at the edge that calls the library.

A message is permanent trouble or transient trouble, never both:

| the database says                                        | means              | sender sees   |
| -------------------------------------------------------- | ------------------ | ------------- |
| it refuses a value: SQLSTATE class 22 (too long, NUL,    | ``InvalidMessage`` | AR / CR, 422  |
| bad encoding, out of range), class 23 other than a       | (102)              |               |
| unique key, or the driver cannot encode a value          |                    |               |
| a unique key another writer stored first (23505)         | retry at once      | (invisible)   |
| a deadlock or serialization failure (40P01, 40001)       | retry at once      | (invisible)   |
| a lock or statement timeout (55P03, 57014: the settings  | ``StoreUnavailable`` | AE / CE, 503 |
| ``PORTALBRIDGE_DB_LOCK_TIMEOUT``, ``..._STATEMENT_...``) |                    |               |
| anything else: connection lost, ...                      | ``StoreUnavailable`` | AE / CE, 503 |

The checks before the database (``engine.limits`` and the adapters) are meant to leave the
first row unreachable; it is the net that keeps a value they missed from looping as "resend
later" for ever. Reasons name the error's class and SQLSTATE only: the driver's own message
may quote the row (``DETAIL: Failing row contains (...)``). Errors arrive wrapped by
SQLAlchemy, or straight from psycopg where the store talks to the driver itself (the
pipelined, locked prefetch of ``mpi.locks``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from engine.committer import classify_engine_error
from engine.errors import EngineError, InvalidMessage, StoreUnavailable

__all__ = ["classify_store_error", "is_store_error", "sqlstate_of", "store_errors"]

_UNIQUE_VIOLATION = "23505"
#: SQLite's names for a refused value (``sqlite3.Error.sqlite_errorname``).
_SQLITE_REFUSALS = frozenset({"SQLITE_TOOBIG", "SQLITE_MISMATCH", "SQLITE_CONSTRAINT_NOTNULL",
                              "SQLITE_CONSTRAINT_CHECK"})


def classify_store_error(exc: Exception) -> EngineError:
    """What a failed unit of work means for the sender."""
    if isinstance(exc, EngineError):
        return exc
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    state = sqlstate_of(exc)
    if _refuses_value(driver, state):
        detail = f", SQLSTATE {state}" if state else ""
        return InvalidMessage(f"the database refused a value of this message "
                              f"({type(driver).__name__}{detail}); it cannot be stored as sent",
                              code="102")
    if isinstance(exc, IntegrityError) or isinstance(driver, psycopg.IntegrityError):
        # A unique key (23505, SQLITE_CONSTRAINT_UNIQUE, ...), raised wrapped or by psycopg.
        return StoreUnavailable("another writer stored the same key first", retry_at_once=True)
    waited = _waited_or_collided(driver)
    if waited is not None:
        return waited
    if isinstance(exc, DBAPIError):
        # A connection found dead is replaced at once; one more try is worth it.
        return StoreUnavailable(f"database unavailable ({type(driver).__name__})",
                                retry_at_once=exc.connection_invalidated)
    if isinstance(exc, SQLAlchemyError | psycopg.Error):
        return StoreUnavailable(f"database error ({type(exc).__name__})")
    return classify_engine_error(exc)


#: Waits that hit a bound (PORTALBRIDGE_DB_LOCK_TIMEOUT, PORTALBRIDGE_DB_STATEMENT_TIMEOUT).
_TIMED_OUT: dict[type[Exception], str] = {
    pg_errors.LockNotAvailable: "another writer held a lock this message needs for longer than "
                                "the lock timeout",
    pg_errors.QueryCanceled: "a database statement ran longer than the statement timeout",
}
#: Two writers' transactions collided; PostgreSQL aborted one. Worth one immediate retry.
_COLLIDED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def _waited_or_collided(driver: BaseException | None) -> StoreUnavailable | None:
    for kind, reason in _TIMED_OUT.items():
        if isinstance(driver, kind):
            return StoreUnavailable(reason)
    if isinstance(driver, _COLLIDED):
        return StoreUnavailable(f"a concurrent writer collided with this one "
                                f"({type(driver).__name__})", retry_at_once=True)
    return None


def is_store_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database (SQLAlchemy or the driver), not from a bug."""
    return isinstance(exc, SQLAlchemyError | psycopg.Error)


def sqlstate_of(exc: BaseException) -> str:
    """The SQLSTATE of a database error (PostgreSQL), or ""."""
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(driver, "sqlstate", None)
    return state if isinstance(state, str) else ""


def _refuses_value(driver: BaseException | None, state: str) -> bool:
    if isinstance(driver, UnicodeError):
        return True  # the driver cannot encode a value (a lone surrogate, say)
    if state[:2] == "22" or (state[:2] == "23" and state != _UNIQUE_VIOLATION):
        return True
    name = getattr(driver, "sqlite_errorname", "")
    # psycopg raises DataError without a SQLSTATE when it refuses a value itself (a NUL).
    return name in _SQLITE_REFUSALS or isinstance(driver, psycopg.DataError)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Short transactions outside the committer (staff, audit): database trouble is a
    ``StoreUnavailable`` (HTTP 503), never an unmapped SQLAlchemy error."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"database unavailable ({type(exc.orig).__name__})") from exc
