"""The harness's world: a database and a vhost of its own, engine processes it may kill, and
the shared servers it restarts (PostgreSQL, RabbitMQ), each waited for until it answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("PORTALBRIDGE_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres").replace("+psycopg", "")
RABBITMQ = os.environ.get("PORTALBRIDGE_TEST_RABBITMQ_HOST", "127.0.0.1")
_SCRIPT = Path(sys.executable).with_name("portalbridge")
PORTALBRIDGE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "engine.cli"]


def run(*command: str, timeout: float = 120) -> str:
    """Run a command; its failure is the harness's failure, with the tool's own words."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Scratch:
    """A PostgreSQL database and a RabbitMQ vhost for one run."""

    name: str

    @property
    def database_url(self) -> str:
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{RABBITMQ}:5672/{self.name}"

    @classmethod
    def create(cls) -> Scratch:
        scratch = cls(f"pb_faults_{uuid.uuid4().hex[:8]}")
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch.name}"')
        run("rabbitmqctl", "-q", "add_vhost", scratch.name)
        run("rabbitmqctl", "-q", "set_permissions", "-p", scratch.name, "guest", ".*", ".*", ".*")
        return scratch

    def drop(self) -> None:
        wait_for_rabbitmq()
        run("rabbitmqctl", "-q", "delete_vhost", self.name)
        wait_for_postgresql()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                         (self.name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')


class EngineProcess:
    """One ``portalbridge`` component in a subprocess, started again after each kill."""

    def __init__(self, name: str, command: str, env: dict[str, str], log: Path,
                 port: int | None = None) -> None:
        self.name, self.command, self.env, self.log, self.port = name, command, env, log, port
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([*PORTALBRIDGE, self.command], env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT)
        if self.port is not None:
            wait_for_port(self.port, self.process)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye; open transactions die with the connection."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def _poll(check: list[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(check, capture_output=True, check=False, timeout=30).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} is not back after {timeout:.0f} s")


def wait_for_rabbitmq() -> None:
    _poll(["rabbitmq-diagnostics", "-q", "check_running"], "RabbitMQ")


def wait_for_postgresql() -> None:
    _poll(["pg_isready", "-q", "-h", "127.0.0.1"], "PostgreSQL")


def restart_rabbitmq() -> None:
    """Stop and start the RabbitMQ application: every connection drops, durable state stays."""
    try:
        run("rabbitmqctl", "-q", "stop_app")
        time.sleep(1.0)
    finally:
        run("rabbitmqctl", "-q", "start_app")
        wait_for_rabbitmq()


def restart_postgresql() -> None:
    """Restart the PostgreSQL server (fast shutdown: open transactions are rolled back)."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    try:
        run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")
    except RuntimeError:
        # Whatever went wrong, the shared server must come back.
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                       capture_output=True, check=False, timeout=120)
        raise
    finally:
        wait_for_postgresql()
