"""A stopping engine exits within PORTALBRIDGE_SHUTDOWN_TIMEOUT, whatever is stuck: the real
``portalbridge listen`` / ``serve`` processes, SIGTERM, and a stopwatch."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, text

from engine.store.database import open_database
from inbound.mllp import frame
from tests.e2e.conftest import PORTALBRIDGE, free_port, portalbridge
from tests.integration.engine_harness import adt

TIMEOUT = 3.0  # PORTALBRIDGE_SHUTDOWN_TIMEOUT of these processes
MARGIN = 1.5  # signal delivery, process exit and the test's polling, on a loaded shared machine


@contextmanager
def started(command: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    portalbridge("db", "upgrade", env=env)
    with log.open("wb") as out:
        process = subprocess.Popen([*PORTALBRIDGE, command], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def wait_for(condition: Callable[[], bool], what: str, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.05)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def stopwatch_sigterm(process: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds from SIGTERM to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {TIMEOUT + 30} s after SIGTERM:\n{log.read_text()}") from None
    return time.monotonic() - started


@pytest.fixture
def env(e2e_env: dict[str, str]) -> dict[str, str]:
    return {**e2e_env, "PORTALBRIDGE_SHUTDOWN_TIMEOUT": str(TIMEOUT),
            "PORTALBRIDGE_WRITER_STALL_SECONDS": "0.5", "PORTALBRIDGE_LOG_LEVEL": "INFO"}


@contextmanager
def tables_locked(url: str) -> Iterator[Connection]:
    """Another session holds the index's tables: every writer and reader waits on it."""
    database = open_database(url)
    with database.connect() as conn:
        conn.execute(text("LOCK TABLE mpi_identifiers, mpi_source_records IN ACCESS EXCLUSIVE MODE"))
        try:
            yield conn
        finally:
            conn.rollback()
    database.dispose()


def send_without_waiting(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(frame(adt("STUCK-1", "S1")))
    return client


def test_listen_exits_in_time_with_its_writer_stuck_on_a_lock(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "listen.log"
    port = int(env["PORTALBRIDGE_MLLP_PORT"])
    with started("listen", env, log) as process, tables_locked(env["PORTALBRIDGE_DATABASE_URL"]):
        wait_for(lambda: accepts(port), "the listener", log)
        client = send_without_waiting(port)
        wait_for(lambda: "writer stalled" in log.read_text(), "the stall", log)
        elapsed = stopwatch_sigterm(process, log)
        client.close()
    assert elapsed < TIMEOUT + MARGIN, f"{elapsed:.1f} s:\n{log.read_text()}"


def test_serve_exits_in_time_with_a_request_and_a_read_stuck(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    port, http = int(env["PORTALBRIDGE_MLLP_PORT"]), f"http://127.0.0.1:{env['PORTALBRIDGE_HTTP_PORT']}"
    with started("serve", env, log) as process:
        wait_for(lambda: accepts(port) and accepts(int(env["PORTALBRIDGE_HTTP_PORT"])), "serve", log)
        with tables_locked(env["PORTALBRIDGE_DATABASE_URL"]):
            client = send_without_waiting(port)
            # A FHIR read waits for the database on a worker thread of the event loop's executor:
            # the kind of thread an interpreter waits for on its way out.
            reader = threading.Thread(target=lambda: _ignore_errors(
                lambda: httpx.get(f"{http}/fhir/Patient/abc", timeout=TIMEOUT + 30)), daemon=True)
            reader.start()
            wait_for(lambda: "writer stalled" in log.read_text(), "the stall", log)
            elapsed = stopwatch_sigterm(process, log)
            client.close()
    assert elapsed < TIMEOUT + MARGIN, f"{elapsed:.1f} s:\n{log.read_text()}"


def _ignore_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server went away: that is the point
        call()


@contextmanager
def silent_broker() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word of AMQP."""
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
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.parametrize("broker", ["closed port", "silent broker"])
def test_serve_exits_in_time_with_the_broker_down(env: dict[str, str], tmp_path: Path, broker: str) -> None:
    log = tmp_path / "serve.log"
    with silent_broker() as silent:
        port = free_port() if broker == "closed port" else silent
        broker_env = {**env, "PORTALBRIDGE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}//"}
        with started("serve", broker_env, log) as process:
            wait_for(lambda: accepts(int(env["PORTALBRIDGE_HTTP_PORT"])), "serve", log)
            time.sleep(1.0)  # the relay is trying to reach the broker
            elapsed = stopwatch_sigterm(process, log)
    assert elapsed < TIMEOUT + MARGIN, f"{elapsed:.1f} s:\n{log.read_text()}"
