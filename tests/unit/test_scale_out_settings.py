"""Settings of issue 8: database timeouts and inbound partitions, read with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import DatabaseTimeouts, Settings
from engine.errors import ConfigurationError


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_environment(env, cwd=tmp_path)


def test_defaults_bound_every_wait_and_leave_the_queue_unpartitioned(tmp_path: Path) -> None:
    default = settings(tmp_path)
    assert default.database_timeouts == DatabaseTimeouts(statement=30.0, lock=5.0, connect=5.0)
    assert (default.inbound_partitions, default.worker_partitions) == (0, None)


def test_timeouts_are_seconds(tmp_path: Path) -> None:
    custom = settings(tmp_path, PORTALBRIDGE_DB_STATEMENT_TIMEOUT="12", PORTALBRIDGE_DB_LOCK_TIMEOUT="0.5",
                      PORTALBRIDGE_DB_CONNECT_TIMEOUT="3")
    assert custom.database_timeouts == DatabaseTimeouts(statement=12.0, lock=0.5, connect=3.0)


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "86400"])
def test_a_timeout_must_be_a_bounded_positive_number(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_DB_LOCK_TIMEOUT"):
        settings(tmp_path, PORTALBRIDGE_DB_LOCK_TIMEOUT=raw)


def test_a_worker_takes_all_partitions_or_the_ones_it_names(tmp_path: Path) -> None:
    assert settings(tmp_path, PORTALBRIDGE_INBOUND_PARTITIONS="8").worker_partitions is None
    chosen = settings(tmp_path, PORTALBRIDGE_INBOUND_PARTITIONS="8",
                      PORTALBRIDGE_WORKER_PARTITIONS="0, 2-4,7")
    assert (chosen.inbound_partitions, chosen.worker_partitions) == (8, frozenset({0, 2, 3, 4, 7}))


@pytest.mark.parametrize(("env", "message"), [
    ({"PORTALBRIDGE_INBOUND_PARTITIONS": "three"}, "not a whole number"),
    ({"PORTALBRIDGE_INBOUND_PARTITIONS": "1000"}, "more than 256"),
    ({"PORTALBRIDGE_WORKER_PARTITIONS": "0"}, "set both"),
    ({"PORTALBRIDGE_INBOUND_PARTITIONS": "3", "PORTALBRIDGE_WORKER_PARTITIONS": "1,3"},
     r"\[3\] do not exist"),
    ({"PORTALBRIDGE_INBOUND_PARTITIONS": "3", "PORTALBRIDGE_WORKER_PARTITIONS": "a-b"},
     "not a list"),
])
def test_partition_settings_that_cannot_work_are_refused(tmp_path: Path, env: dict[str, str],
                                                         message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(tmp_path, **env)
