"""Sealing journal payloads: AES-256-GCM under a subkey per purpose, and where the key comes from."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from engine.sealing import GENERATED_KEY_FILE, AesGcmSealer, UnavailableSealer, load_key, new_key_text
from tests.fakes import TEST_SECRET_KEY

KEY = base64.urlsafe_b64decode(TEST_SECRET_KEY)
MESSAGE = b"MSH|^~\\&|APP|GHH|...\rPID|1||123^^^GHH^MR||DOE^JANE||19800101"


def test_sealed_bytes_open_back_and_do_not_show_the_message() -> None:
    sealer = AesGcmSealer(KEY, b"journal")
    sealed = sealer.seal(MESSAGE, b"payload")
    assert b"DOE" not in sealed and b"123" not in sealed
    assert sealer.open(sealed, b"payload") == MESSAGE
    assert sealer.seal(MESSAGE, b"payload") != sealed  # a fresh nonce every time


@pytest.mark.parametrize("tamper", ["flip a bit", "other purpose", "other column", "other key",
                                    "truncated"])
def test_anything_altered_or_misplaced_refuses_to_open(tamper: str) -> None:
    sealer = AesGcmSealer(KEY, b"journal")
    sealed = sealer.seal(MESSAGE, b"payload")
    what, opener = b"payload", sealer
    if tamper == "flip a bit":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif tamper == "other purpose":
        opener = AesGcmSealer(KEY, b"tokens")
    elif tamper == "other column":
        what = b"response"
    elif tamper == "other key":
        opener = AesGcmSealer(base64.urlsafe_b64decode(new_key_text()), b"journal")
    else:
        sealed = sealed[:10]
    with pytest.raises(ValueError, match=r"altered|not a sealed value"):
        opener.open(sealed, what)


def test_the_key_comes_from_the_setting_or_the_file(tmp_path: Path) -> None:
    assert load_key(TEST_SECRET_KEY, None, embedded=False, folder=tmp_path) == KEY
    key_file = tmp_path / "key"
    key_file.write_text(TEST_SECRET_KEY + "\n")
    assert load_key(None, key_file, embedded=False, folder=tmp_path) == KEY
    with pytest.raises(ConfigurationError, match="32 bytes in base64"):
        load_key("c2hvcnQ=", None, embedded=False, folder=tmp_path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_key(None, tmp_path / "missing", embedded=False, folder=tmp_path)


def test_postgresql_needs_a_key_and_embedded_sqlite_makes_one_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="required with PostgreSQL"):
        load_key(None, None, embedded=False, folder=tmp_path)
    first = load_key(None, None, embedded=True, folder=tmp_path)
    generated = tmp_path / GENERATED_KEY_FILE
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert load_key(None, None, embedded=True, folder=tmp_path) == first and len(first) == 32


def test_a_process_without_the_key_says_why_it_cannot_seal() -> None:
    sealer = UnavailableSealer("set PORTALBRIDGE_SECRET_KEY")
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_SECRET_KEY"):
        sealer.seal(MESSAGE, b"payload")
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_SECRET_KEY"):
        sealer.open(MESSAGE, b"payload")


def test_the_key_and_metrics_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    from engine.config import Settings

    default = Settings.from_environment({}, cwd=tmp_path)
    assert (default.secret_key, default.secret_key_file, default.metrics_port) == (None, None, None)
    assert default.working_folder == tmp_path
    custom = Settings.from_environment({"PORTALBRIDGE_SECRET_KEY": TEST_SECRET_KEY,
                                        "PORTALBRIDGE_SECRET_KEY_FILE": "/run/secrets/pb",
                                        "PORTALBRIDGE_METRICS_PORT": "9102"}, cwd=tmp_path)
    assert (custom.secret_key, custom.secret_key_file, custom.metrics_port) == (
        TEST_SECRET_KEY, Path("/run/secrets/pb"), 9102)
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_METRICS_PORT"):
        Settings.from_environment({"PORTALBRIDGE_METRICS_PORT": "ninety"}, cwd=tmp_path)
