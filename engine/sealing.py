"""Sealing bytes at rest: AES-256-GCM (``cryptography``) under a key from the settings.

The key is ``PORTALBRIDGE_SECRET_KEY`` (32 bytes, URL-safe base64) or the file that
``PORTALBRIDGE_SECRET_KEY_FILE`` names. An embedded SQLite installation with neither gets a
key file generated once in the working folder (``portalbridge.key``, mode 0600); with
PostgreSQL the key is required, because a key made up on one machine would leave every
other process unable to open what this one sealed.

Each use of the key gets its own subkey (HKDF-SHA256 with the purpose as ``info``), so the
message journal and any other sealed store can share the one setting without sharing a key.
A sealed value is ``b"\\x01" + nonce (12 bytes, random) + ciphertext and tag``; the
associated data names what the value is (the journal's column), so a sealed payload cannot
be passed off as a sealed response.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.config import Settings
from engine.errors import ConfigurationError

__all__ = ["GENERATED_KEY_FILE", "JOURNAL_PURPOSE", "AesGcmSealer", "Sealer", "UnavailableSealer",
           "journal_sealer", "load_key", "new_key_text"]

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "portalbridge.key"
#: The HKDF ``info`` of the message journal's subkey.
JOURNAL_PURPOSE = b"portalbridge message journal payloads"
_VERSION = b"\x01"
_NONCE = 12


class Sealer(ABC):
    """Port: seals bytes so that only a holder of the key can read them back."""

    @abstractmethod
    def seal(self, plain: bytes, what: bytes) -> bytes:
        """``plain`` encrypted and authenticated; ``what`` names the value (associated data)."""

    @abstractmethod
    def open(self, sealed: bytes, what: bytes) -> bytes:
        """The plain bytes; ``ValueError`` when altered, sealed under another key or as
        something else."""


class AesGcmSealer(Sealer):
    """AES-256-GCM with a random 96-bit nonce per value, under a subkey for ``purpose``."""

    def __init__(self, key: bytes, purpose: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("the secret key must be 32 bytes")
        subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)
        self._aead = AESGCM(subkey)

    def seal(self, plain: bytes, what: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, what)

    def open(self, sealed: bytes, what: bytes) -> bytes:
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE + 16:
            raise ValueError("not a sealed value")
        try:
            return self._aead.decrypt(sealed[1:1 + _NONCE], sealed[1 + _NONCE:], what)
        except InvalidTag:
            raise ValueError("the sealed value was altered or sealed with another key") from None


class UnavailableSealer(Sealer):
    """For processes started without the key: anything that seals or opens says why it cannot."""

    def __init__(self, why: str) -> None:
        self._why = why

    def seal(self, plain: bytes, what: bytes) -> bytes:
        raise ConfigurationError(self._why)

    def open(self, sealed: bytes, what: bytes) -> bytes:
        raise ConfigurationError(self._why)


def new_key_text() -> str:
    """A fresh key, written as the setting and the key file expect it."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"{where}: the secret key must be 32 bytes in base64 (make one "
                                 "with `python3 -c \"import base64,os; "
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


def journal_sealer(settings: Settings, *, needs: bool, embedded: bool) -> Sealer:
    """The message journal's sealer. The key is read (or generated, embedded) when ``needs``
    says this process seals or opens payloads, or whenever one is configured (so a bad key
    fails at start); otherwise sealing says why it cannot."""
    if needs or settings.secret_key or settings.secret_key_file:
        key = load_key(settings.secret_key, settings.secret_key_file, embedded=embedded,
                       folder=settings.working_folder)
        return AesGcmSealer(key, JOURNAL_PURPOSE)
    return UnavailableSealer("the journal's payloads are sealed: this needs "
                             "PORTALBRIDGE_SECRET_KEY (or PORTALBRIDGE_SECRET_KEY_FILE)")
