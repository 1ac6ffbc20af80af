"""The secret box: AES-256-GCM (``cryptography``) for small secrets kept at rest.

It seals the copy of each activation token that "Resend" needs and the secret values inside
notification rows (tokens, passphrases), which are opened only at delivery. The key is
``PORTALBRIDGE_SECRET_KEY`` (32 bytes, base64) or the file ``PORTALBRIDGE_SECRET_KEY_FILE``
names. An embedded SQLite installation with neither gets a key file generated once in the
working folder; a PostgreSQL one refuses to start without a key, because a key made up on
one machine would leave every other process unable to open what it sealed.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.errors import ConfigurationError
from membership.tokens import SecretBox

__all__ = ["GENERATED_KEY_FILE", "AesGcmBox", "NoKeyBox", "load_key", "new_key_text"]

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "portalbridge.key"
_PREFIX = "v1."
_NONCE = 12


class AesGcmBox(SecretBox):
    """AES-256-GCM with a random 96-bit nonce per seal; ``v1.<base64url(nonce|ciphertext)>``."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_PREFIX):])
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("the sealed value was altered or sealed with another key") from exc


class NoKeyBox(SecretBox):
    """For commands that never seal (``route explain``, ``outbox list``): no key is asked for,
    and anything that does try to seal or open says why it cannot."""

    def seal(self, plaintext: str) -> str:
        raise ConfigurationError("this command runs without the secret key")

    def open(self, sealed: str) -> str:
        raise ConfigurationError("this command runs without the secret key")


def new_key_text() -> str:
    """A fresh key as it is written in the setting or the key file."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"{where}: the secret key must be 32 bytes in base64 "
                                 "(make one with `python -c \"import base64,os;"
                                 "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\"`)")
    return key


def load_key(key_text: str | None, key_file: Path | None, *, embedded: bool, folder: Path) -> bytes:
    """The key from the setting, the key file, or (embedded SQLite only) a generated file."""
    if key_text:
        return _decode(key_text, "PORTALBRIDGE_SECRET_KEY")
    if key_file is not None:
        try:
            return _decode(key_file.read_text(encoding="ascii"), str(key_file))
        except OSError as exc:
            raise ConfigurationError(f"PORTALBRIDGE_SECRET_KEY_FILE: cannot read {key_file} "
                                     f"({exc.strerror})") from exc
    if not embedded:
        raise ConfigurationError("PORTALBRIDGE_SECRET_KEY (or PORTALBRIDGE_SECRET_KEY_FILE) is "
                                 "required with PostgreSQL: every process must share one key")
    path = folder / GENERATED_KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_key_text() + "\n")
        log.info("generated the secret key file %s (mode 0600); in production set "
                 "PORTALBRIDGE_SECRET_KEY or PORTALBRIDGE_SECRET_KEY_FILE instead", path)
    return _decode(path.read_text(encoding="ascii"), str(path))
