"""What the database's errors mean for the sender, and how the group committer reacts.

The errors are the real classes of SQLAlchemy and psycopg, built as the drivers raise them;
the unit of work is our own in-memory double.
"""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from engine.committer import GroupCommitter
from engine.errors import EngineError, InvalidMessage, StoreUnavailable
from engine.handlers import MessageBus
from engine.rules import RoutingRules
from engine.store.errors import classify_store_error
from tests.fakes import FixedClock, InMemoryInbox, InMemoryUnitOfWork, SequentialIds
from tests.unit.test_handlers import upsert


def wrapped(kind: type[Exception], driver: Exception) -> Exception:
    return kind("INSERT ...", {}, driver)


@pytest.mark.parametrize(("error", "expected", "at_once"), [
    (wrapped(DataError, psycopg.errors.StringDataRightTruncation("value too long")), InvalidMessage, False),
    (wrapped(DataError, psycopg.DataError("cannot contain NUL")), InvalidMessage, False),
    (wrapped(IntegrityError, psycopg.errors.NotNullViolation("null value")), InvalidMessage, False),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), InvalidMessage, False),
    (wrapped(IntegrityError, psycopg.errors.UniqueViolation("duplicate key")), StoreUnavailable, True),
    (wrapped(IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")), StoreUnavailable, True),
    (wrapped(OperationalError, psycopg.errors.LockNotAvailable("lock timeout")), StoreUnavailable, False),
    (psycopg.OperationalError("the connection is lost"), StoreUnavailable, False),
])
def test_refused_values_are_permanent_and_everything_else_transient(
        error: Exception, expected: type[EngineError], at_once: bool) -> None:
    classified = classify_store_error(error)
    assert type(classified) is expected
    if isinstance(classified, StoreUnavailable):
        assert classified.retry_at_once is at_once
    else:
        assert classified.hl7_error_code == "102"


def test_a_refusal_reason_names_the_sqlstate_and_never_the_value() -> None:
    driver = psycopg.errors.StringDataRightTruncation("DETAIL: Failing row contains (SMITH)")
    reason = classify_store_error(wrapped(DataError, driver)).reason
    assert "22001" in reason and "SMITH" not in reason


class PoisonedUnitOfWork(InMemoryUnitOfWork):
    """Commits like the real store, except that the database refuses a 'poison' message."""

    attempts = 0

    def commit(self) -> None:
        assert isinstance(self.inbox, InMemoryInbox)
        PoisonedUnitOfWork.attempts += 1
        if any(control.startswith("poison") for _, control in self.inbox.pending):
            self.close()
            raise wrapped(DataError, psycopg.errors.StringDataRightTruncation("value too long"))
        super().commit()


def test_the_group_is_rerun_without_the_refused_message_and_it_is_not_retried(
        rules: RoutingRules) -> None:
    inbox = InMemoryInbox()
    committer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()),
                               lambda _check: PoisonedUnitOfWork(inbox=inbox),
                               classify=classify_store_error)
    PoisonedUnitOfWork.attempts = 0

    async def main() -> list[object]:
        commands = [upsert(f"ok{n}", mrn=f"M{n}") for n in range(5)]
        commands.insert(2, upsert("poison-1", mrn="P"))
        return await asyncio.gather(*(committer.apply(c) for c in commands), return_exceptions=True)

    committer.start()
    try:
        results = asyncio.run(main())
    finally:
        committer.stop()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidMessage)
    assert {control for _, control in inbox.committed} == {f"ok{n}" for n in range(5)}
    assert PoisonedUnitOfWork.attempts <= 1 + 6  # the group once, then each message once


@pytest.mark.parametrize(("driver_error", "reason", "at_once"), [
    (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), "lock timeout", False),
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), "statement timeout",
     False),
    (psycopg.errors.DeadlockDetected("deadlock detected"), "collided", True),
    (psycopg.errors.SerializationFailure("could not serialize"), "collided", True),
])
@pytest.mark.parametrize("raised_by", ["sqlalchemy", "psycopg"])
def test_bounded_waits_and_collisions_say_so_whether_sqlalchemy_wrapped_them_or_not(
        driver_error: Exception, reason: str, at_once: bool, raised_by: str) -> None:
    # psycopg raises directly from the pipelined, locked prefetch (mpi.locks).
    error = classify_store_error(wrapped(OperationalError, driver_error)
                                 if raised_by == "sqlalchemy" else driver_error)
    assert isinstance(error, StoreUnavailable) and reason in error.reason
    assert error.retry_at_once is at_once


def test_a_key_another_writer_took_first_is_retried_at_once_when_psycopg_raises_it() -> None:
    error = classify_store_error(psycopg.errors.UniqueViolation("duplicate key value"))
    assert isinstance(error, StoreUnavailable) and error.retry_at_once
