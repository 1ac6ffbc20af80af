"""Run `portalbridge` as a user would: a real subprocess, real ports, a real database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from engine.store.database import open_database
from engine.store.tables import metadata
from tests.fakes import TEST_SECRET_KEY

E2E = Path(__file__).resolve().parent
_SCRIPT = Path(sys.executable).with_name("portalbridge")
#: The installed console script, as a user runs it (``python -m engine.cli`` if not installed).
PORTALBRIDGE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "engine.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServeProcess:
    env: dict[str, str]
    mllp_port: int
    http_port: int
    process: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def portalbridge(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PORTALBRIDGE, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=check)


@pytest.fixture
def e2e_env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    database = open_database(postgres_url)
    with database.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY"))
    database.dispose()
    env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": postgres_url,
           "PORTALBRIDGE_CONFIG": str(E2E / "corpus_rules.yaml"),
           "PORTALBRIDGE_MLLP_PORT": str(free_port()), "PORTALBRIDGE_HTTP_PORT": str(free_port()),
           "PORTALBRIDGE_LOG_LEVEL": "WARNING", "PORTALBRIDGE_SECRET_KEY": TEST_SECRET_KEY}
    env.pop("PORTALBRIDGE_BROKER_URL", None)
    return env


@pytest.fixture
def serve(e2e_env: dict[str, str], tmp_path: Path) -> Iterator[ServeProcess]:
    """`portalbridge db upgrade`, then `portalbridge serve` until the test is done."""
    portalbridge("db", "upgrade", env=e2e_env)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([*PORTALBRIDGE, "serve"], env=e2e_env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=tmp_path)
    running = ServeProcess(e2e_env, int(e2e_env["PORTALBRIDGE_MLLP_PORT"]),
                           int(e2e_env["PORTALBRIDGE_HTTP_PORT"]), process)
    try:
        _wait_until_ready(running, tmp_path / "serve.log")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    assert process.returncode in (0, -15), (tmp_path / "serve.log").read_text()


def staff_token(env: dict[str, str], name: str, *roles: str) -> str:
    """`portalbridge staff add NAME --role ...` as an operator runs it: the token is the
    last line of standard output."""
    args = [arg for role in roles for arg in ("--role", role)]
    return portalbridge("staff", "add", name, *args, env=env).stdout.splitlines()[-1]


def _wait_until_ready(running: ServeProcess, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{running.http}/readyz", timeout=1).status_code == 200:
                with socket.create_connection(("127.0.0.1", running.mllp_port), timeout=1):
                    return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not become ready:\n{log.read_text()}")
