"""The relay as a component of a process: liveness file, and a fatal error stops the process."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from engine.background import EngineThread
from engine.bootstrap import build_runtime
from engine.config import Settings
from engine.errors import ConfigurationError
from tests.fakes import TEST_SECRET_KEY
from tests.integration.relay_support import Downstream


def test_a_relay_process_touches_its_heartbeat_file_while_alive(
        tmp_path: Path, rules_file: Path) -> None:
    alive = tmp_path / "alive"
    settings = Settings(
        secret_key=TEST_SECRET_KEY, database_url=f"sqlite:///{tmp_path / 'pb.db'}", config_path=rules_file,
                        heartbeat_file=alive)
    with EngineThread(build_runtime(settings, needs_key=False), frozenset({"relay"})) as thread:
        deadline = time.monotonic() + 10
        while not alive.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive.exists() and time.time() - alive.stat().st_mtime < 10
    thread.runtime.database.dispose()


def test_a_topology_clash_stops_the_relay_process_with_a_configuration_error(
        postgres_url: str, amqp_url: str, rules_file: Path, downstream: Downstream) -> None:
    channel = downstream.channel
    channel.exchange_delete("portalbridge.status")
    channel.exchange_declare("portalbridge.status", "direct", durable=True)  # not ours
    settings = replace(Settings(
        secret_key=TEST_SECRET_KEY, database_url=postgres_url, config_path=rules_file),
                       broker_url=amqp_url)
    thread = EngineThread(build_runtime(settings, needs_key=False), frozenset({"relay"}))
    try:
        thread.start()
        thread.join(20)
        assert not thread.is_alive()
        assert isinstance(thread._error, ConfigurationError)
        assert "other arguments" in thread._error.reason
    finally:
        downstream.channel.exchange_delete("portalbridge.status")  # the next start declares it
        thread.runtime.database.dispose()
