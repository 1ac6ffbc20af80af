"""A writer stuck on a lock another session holds: readiness fails with the reason, one log
line says so, and both recover once the lock is released (PostgreSQL)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from engine.store.database import open_database
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_stuck_writer_fails_readiness_and_recovers(postgres_url: str, rules_file: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.watchdog")
    blocker = open_database(postgres_url)
    with running_engine(postgres_url, rules_file, writer_stall_seconds=0.3) as engine, \
            httpx.Client(base_url=engine.http, timeout=10) as http:
        assert http.get("/readyz").status_code == 200
        acks: list[bytes] = []
        with blocker.connect() as lock:
            # Every group reads the identifiers first; this session keeps it from doing so.
            lock.execute(text("LOCK TABLE mpi_identifiers IN ACCESS EXCLUSIVE MODE"))
            client = MllpConnection(engine.mllp_port, timeout=30)
            sender = threading.Thread(target=lambda: acks.append(client.exchange(adt("W-1", "W1"))))
            sender.start()
            wait_for(lambda: http.get("/readyz").status_code == 503)
            answer = http.get("/readyz").json()
            assert answer["checks"]["writer"] is False and answer["checks"]["database"] is True
            reason = answer["reasons"]["writer"]
            assert "group-committer-0 has been applying one group of 1 message(s)" in reason
            assert not acks  # the message waits, and says nothing until it is stored
            lock.rollback()
        sender.join(15)
        client.close()
        assert msa(acks[0])[1:3] == ["AA", "W-1"]
        wait_for(lambda: http.get("/readyz").status_code == 200)
    blocker.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.watchdog"]
    assert [line.split(":")[0] for line in lines] == ["writer stalled", "writer moved again"]
