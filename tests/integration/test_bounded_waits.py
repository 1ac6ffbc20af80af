"""Every wait on the database is bounded: a held lock is an AE, never a hang."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, select, text

from engine.config import DatabaseTimeouts
from engine.errors import StoreUnavailable
from engine.store.database import open_database
from engine.store.errors import classify_store_error
from mpi.locks import LOCK_NAMESPACE
from mpi.tables import patients
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine

SHORT = DatabaseTimeouts(statement=5.0, lock=0.5, connect=2.0)


def driver_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("held", ["patient row", "identifier lock"])
def test_a_message_whose_locks_are_held_elsewhere_is_ae_then_applied_when_resent(
        database_url: str, database: Engine, rules_file: Path, held: str) -> None:
    with running_engine(database_url, rules_file, database_timeouts=SHORT) as engine:
        client = MllpConnection(engine.mllp_port)
        assert msa(client.exchange(adt("L-1", "MRN-L")))[1] == "AA"
        with psycopg.connect(driver_url(database_url)) as other:  # another writer, stuck
            if held == "patient row":
                other.execute("SELECT id FROM mpi_patients FOR UPDATE")
            else:
                other.execute("SELECT pg_advisory_xact_lock(%s, hashtext('GHH|MRN-L'))",
                              (LOCK_NAMESPACE,))
            started = time.monotonic()
            answer = msa(client.exchange(adt("L-2", "MRN-L", family="ROE")))
            waited = time.monotonic() - started
            other.rollback()
        assert answer[1] == "AE" and "lock timeout" in answer[3], answer
        assert waited < 5, f"the AE took {waited:.1f} s"
        assert msa(client.exchange(adt("L-2", "MRN-L", family="ROE")))[1] == "AA"  # the resend
        client.close()
    with database.connect() as conn:
        [best] = conn.execute(select(patients.c.best)).scalars()
    assert '"ROE"' in best


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_statement_past_the_statement_timeout_is_a_transient_failure(database_url: str) -> None:
    engine = open_database(database_url, timeouts=DatabaseTimeouts(statement=0.2))
    try:
        with pytest.raises(Exception) as raised, engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(2)"))
        error = classify_store_error(raised.value)
        assert isinstance(error, StoreUnavailable) and "statement timeout" in error.reason
    finally:
        engine.dispose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database host)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()


def test_a_database_that_does_not_answer_fails_within_the_connect_timeout(silent_server: int) -> None:
    engine = open_database(f"postgresql://postgres@127.0.0.1:{silent_server}/portalbridge",
                           timeouts=DatabaseTimeouts(connect=2.0))
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        engine.connect()
    assert time.monotonic() - started < 6
    assert isinstance(classify_store_error(raised.value), StoreUnavailable)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_waits_for_its_write_lock_no_longer_than_the_lock_timeout(
        database_url: str, rules_file: Path) -> None:
    path = database_url.removeprefix("sqlite:///")
    with running_engine(database_url, rules_file, database_timeouts=SHORT) as engine:
        client = MllpConnection(engine.mllp_port)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        answer = msa(client.exchange(adt("S-1", "MRN-S")))
        waited = time.monotonic() - started
        other.execute("ROLLBACK")
        other.close()
        assert answer[1] == "AE" and waited < 5, (answer, waited)
        assert msa(client.exchange(adt("S-1", "MRN-S")))[1] == "AA"
        client.close()
