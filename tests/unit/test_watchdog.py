"""The writer watchdog with a hand-moved clock: stalls fail readiness and are logged
once; and the settings of the watchdog and of the shutdown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.config import Settings
from engine.errors import ConfigurationError
from engine.watchdog import Busy, WriterWatchdog


class Writers:
    """What the group committer reports: writer name -> the group it is busy with."""

    def __init__(self) -> None:
        self.busy: dict[str, Busy] = {}
        self.now = 1000.0

    def watchdog(self, threshold: float = 30.0) -> WriterWatchdog:
        return WriterWatchdog(lambda: dict(self.busy), threshold, clock=lambda: self.now)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.watchdog"]


def test_a_busy_writer_below_the_threshold_is_ready(caplog: pytest.LogCaptureFixture) -> None:
    writers = Writers()
    watchdog = writers.watchdog()
    assert watchdog.problem() is None
    writers.busy["group-committer-0"] = Busy(writers.now, 3)
    writers.now += 29.9
    assert watchdog.problem() is None
    assert warnings_of(caplog) == []


def test_a_stall_fails_readiness_is_logged_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    writers = Writers()
    watchdog = writers.watchdog()
    writers.busy["group-committer-0"] = Busy(writers.now, 3)
    writers.now += 31
    problem = watchdog.problem()
    assert problem == ("group-committer-0 has been applying one group of 3 message(s) for 31 s "
                       "(threshold 30 s)")
    writers.now += 60
    assert watchdog.problem() is not None
    assert len(warnings_of(caplog)) == 1 and "writer stalled" in warnings_of(caplog)[0]
    del writers.busy["group-committer-0"]
    assert watchdog.problem() is None
    assert "writer moved again" in warnings_of(caplog)[-1] and len(warnings_of(caplog)) == 2


def test_a_new_stall_after_moving_is_a_new_report(caplog: pytest.LogCaptureFixture) -> None:
    writers = Writers()
    watchdog = writers.watchdog(threshold=1)
    writers.busy["w"] = Busy(writers.now, 1)
    writers.now += 2
    watchdog.problem()
    writers.busy["w"] = Busy(writers.now, 2)  # moved on, and stuck again on the next group
    writers.now += 2
    assert "2 message(s)" in (watchdog.problem() or "")
    assert [m.split(":")[0] for m in warnings_of(caplog)] == [
        "writer stalled", "writer moved again", "writer stalled"]


def test_the_stall_and_shutdown_settings_are_read_with_checks(tmp_path: Path) -> None:
    default = Settings.from_environment({}, cwd=tmp_path)
    assert (default.writer_stall_seconds, default.shutdown_timeout) == (30.0, 10.0)
    custom = Settings.from_environment({"PORTALBRIDGE_WRITER_STALL_SECONDS": "2.5",
                                        "PORTALBRIDGE_SHUTDOWN_TIMEOUT": "4"}, cwd=tmp_path)
    assert (custom.writer_stall_seconds, custom.shutdown_timeout) == (2.5, 4.0)
    for raw in ("soon", "0", "-1", "nan", "inf"):
        with pytest.raises(ConfigurationError, match="PORTALBRIDGE_SHUTDOWN_TIMEOUT"):
            Settings.from_environment({"PORTALBRIDGE_SHUTDOWN_TIMEOUT": raw}, cwd=tmp_path)
