"""Every database error a unit of work can meet is a transient failure with a reason."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from engine.errors import StoreUnavailable, TransientFailure
from engine.store.errors import classify_store_error


def wrapped(error: Exception) -> DBAPIError:
    return OperationalError("SELECT 1", {}, error)


@pytest.mark.parametrize(("driver_error", "reason", "at_once"), [
    (pg_errors.LockNotAvailable("canceling statement due to lock timeout"), "lock timeout", False),
    (pg_errors.QueryCanceled("canceling statement due to statement timeout"), "statement timeout", False),
    (pg_errors.DeadlockDetected("deadlock detected"), "collided", True),
    (pg_errors.SerializationFailure("could not serialize"), "collided", True),
    (psycopg.OperationalError("server closed the connection"), "database unavailable", False),
])
@pytest.mark.parametrize("raised_by", ["sqlalchemy", "psycopg"])
def test_driver_errors_map_whether_sqlalchemy_wrapped_them_or_not(
        driver_error: Exception, reason: str, at_once: bool, raised_by: str) -> None:
    error = classify_store_error(wrapped(driver_error) if raised_by == "sqlalchemy" else driver_error)
    assert isinstance(error, StoreUnavailable) and reason in error.reason
    assert error.retry_at_once is at_once


def test_a_key_another_writer_took_first_is_retried_at_once() -> None:
    for exc in (IntegrityError("INSERT", {}, Exception("duplicate")),
                pg_errors.UniqueViolation("duplicate key value")):
        error = classify_store_error(exc)
        assert isinstance(error, StoreUnavailable) and error.retry_at_once


def test_anything_else_is_an_internal_transient_failure() -> None:
    error = classify_store_error(KeyError("x"))
    assert isinstance(error, TransientFailure) and not isinstance(error, StoreUnavailable)
