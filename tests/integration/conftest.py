"""Fixtures for tests against the real RabbitMQ: a vhost per test run, pika as downstream.

RabbitMQ is a required service like PostgreSQL: when it cannot be reached the tests that need
it fail with a message saying how to start it; they never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from engine.store.database import open_database
from engine.store.tables import metadata
from tests.integration.relay_support import Downstream

RABBITMQ_HOST = os.environ.get("PORTALBRIDGE_TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("PORTALBRIDGE_TEST_RABBITMQ_PORT", "5672"))
START_HINT = "start it with `rabbitmq-server -detached` (as root)"


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q ARGS``; a failure fails the test with the tool's own words."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail(f"rabbitmqctl is required to manage the test vhost; {START_HINT}")
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of its own for this test run, deleted afterwards (with everything in it)."""
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is required at {RABBITMQ_HOST}:{RABBITMQ_PORT} ({exc}); {START_HINT}")
    name = f"pb_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def amqp_url(rabbitmq_vhost: str) -> str:
    return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{rabbitmq_vhost}"


@pytest.fixture
def downstream(amqp_url: str) -> Iterator[Downstream]:
    """A pika client acting as a downstream system; its queues are deleted after the test."""
    client = Downstream(amqp_url)
    client.reset_topology_queues()
    yield client
    client.close()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """The PostgreSQL test database, emptied."""
    engine = open_database(postgres_url)
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    yield engine
    engine.dispose()


@pytest.fixture
def relay_database(database_url: str) -> Iterator[Engine]:
    """SQLite, then PostgreSQL (emptied by ``database_url``)."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()
