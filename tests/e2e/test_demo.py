"""`portalbridge demo`, the README's first command, works end to end on embedded defaults."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import PORTALBRIDGE


def test_the_demo_sends_the_feed_and_reads_the_mpi_with_its_own_staff_token(tmp_path: Path) -> None:
    # As a new user runs it: no settings at all, in an empty folder.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTALBRIDGE_")}
    done = subprocess.run([*PORTALBRIDGE, "demo"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "staff member 'demo' created for the demo's requests" in out
    assert "NORTH-0003  from NORTH -> AA" in out and "-> AR portalbridge accepts ADT messages only" in out
    assert "GET /mpi/patients by identifier NGH|100234: 1 patient(s)" in out
    assert "GET /mpi/patients by identifier NGH|100999 (merged away): 1 patient(s)" in out
    assert "GET /workbench/audit: 6 entries, newest first" in out
    assert "To: alex.sample@example.org  Subject: Activate your North General Patient Portal account" in out
    assert '-> 200 {"member_id"' in out and '"membership_status": "active"}' in out
    assert "(Registration Complete)" in out and "member.activate success" in out
    assert out.count("staff:demo") == 3 and "staff.add" in out
    assert "pbs_" not in out.replace("Bearer pbs_...", ""), "the demo never prints its token"
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing in the working folder"
