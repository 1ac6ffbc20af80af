"""Sealing journal payloads: AES-256-GCM under a subkey of its own; the key and port settings."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from engine.sealing import AesGcmSealer, UnavailableSealer, journal_sealer
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
        opener = AesGcmSealer(bytes(range(32)), b"journal")
    else:
        sealed = sealed[:10]
    with pytest.raises(ValueError, match=r"altered|not a sealed value"):
        opener.open(sealed, what)


def test_a_process_without_the_key_says_why_it_cannot_seal() -> None:
    assert isinstance(journal_sealer(KEY), AesGcmSealer)
    sealer = journal_sealer(None)
    assert isinstance(sealer, UnavailableSealer)
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_SECRET_KEY"):
        sealer.seal(MESSAGE, b"payload")
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_SECRET_KEY"):
        sealer.open(MESSAGE, b"payload")


def test_the_journal_subkey_is_not_the_key_the_secret_box_uses() -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = journal_sealer(KEY).seal(MESSAGE, b"journal.payload")
    with pytest.raises(InvalidTag):  # the raw key (the secret box's) cannot open it
        AESGCM(KEY).decrypt(sealed[1:13], sealed[13:], b"journal.payload")


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
