"""Translate SQLAlchemy's errors into the engine's tree, at the edge that calls the library."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from engine.committer import classify_engine_error
from engine.errors import EngineError, StoreUnavailable

__all__ = ["classify_store_error", "store_errors"]


def classify_store_error(exc: Exception) -> EngineError:
    """What a failed unit of work means for the sender."""
    if isinstance(exc, IntegrityError):
        return StoreUnavailable("another writer stored the same key first", retry_at_once=True)
    if isinstance(exc, DBAPIError):
        # A connection found dead is replaced at once; one more try is worth it.
        return StoreUnavailable(f"database unavailable ({type(exc.orig).__name__})",
                                retry_at_once=exc.connection_invalidated)
    if isinstance(exc, SQLAlchemyError):
        return StoreUnavailable(f"database error ({type(exc).__name__})")
    return classify_engine_error(exc)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Short transactions outside the committer (staff, audit): database trouble is a
    ``StoreUnavailable`` (HTTP 503), never an unmapped SQLAlchemy error."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"database unavailable ({type(exc.orig).__name__})") from exc
