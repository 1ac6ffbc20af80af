"""The README's "Running it" commands, run as written from the folder the README names.

The folder is a scratch copy of what those commands touch in the repository (``routing.yaml``,
the sample feed, ``.venv`` as a link to the installed environment). One thing differs from
the text: the ports, free ones instead of 2575 and 8080, because the build machine is shared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.e2e.conftest import free_port


def readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert match is not None, f"no sh block after {after!r}"
    return match.group(1)


def test_running_it_works_as_written(tmp_path: Path) -> None:
    script = readme_block("From the repository's folder")
    for name in ("routing.yaml", "engine/samples/demo_feed.hl7"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    mllp, http = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTALBRIDGE_")}
    env.update(PORTALBRIDGE_MLLP_PORT=str(mllp), PORTALBRIDGE_HTTP_PORT=str(http),
               PORTALBRIDGE_LOG_LEVEL="WARNING")
    done = subprocess.run(["bash", "-c", script.replace(":8080", f":{http}")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180, check=False)
    out = done.stdout
    assert f"sent 7 message(s) from 1 file(s) to 127.0.0.1:{mllp}: AA 6, AR 1" in out, done.stderr
    assert "NORTH-0005\tAR\tportalbridge accepts ADT messages only" in out
    assert '"total":1' in out.replace(" ", "") and "SAMPLE" in out  # curl: the patient
    # events tail --count 1: the feed's A04 with an e-mail enrolled its patient (mpi.changed
    # is for members only, and the enrollment goes through the request queue first).
    assert out.count('"type": "org.portalbridge.member.enrolled.v1"') + out.count(
        '"type":"org.portalbridge.member.enrolled.v1"') == 1
    assert (tmp_path / "portalbridge.db").exists()
    assert (tmp_path / "portalbridge.key").stat().st_mode & 0o777 == 0o600  # seals the journal
    assert "Traceback" not in done.stderr
