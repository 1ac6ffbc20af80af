"""The fault harness, time-boxed for CI (``pytest -m faults tests/faults``, about 80 s).

It restarts the shared PostgreSQL and RabbitMQ servers, so the default test run leaves it
out (``-m "not faults"`` in pyproject.toml); ``.ci/run`` runs it on its own, when nothing
else uses the servers. ``python -m tests.faults --long`` is the soak.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import Plan, run


@pytest.mark.faults
def test_no_acknowledged_message_is_lost_or_applied_twice_under_faults(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        books = run(Plan(cycles=1), tmp_path, progress=lambda line: print(line, flush=True))
        print("\n" + books.table())
    assert books.violations == [], f"logs in {tmp_path}"
