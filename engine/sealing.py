"""Sealing bytes at rest: AES-256-GCM (``cryptography``), for the message journal's payloads.

The key is the one ``engine.secretbox.load_key`` reads (``PORTALBRIDGE_SECRET_KEY``, the file
``PORTALBRIDGE_SECRET_KEY_FILE`` names, or an embedded installation's generated key file),
shared with the secret box that seals activation tokens. The journal never uses it as it
is: it gets its own subkey (HKDF-SHA256 with the purpose as ``info``), so the two stores
share the one setting without sharing a key. ``engine.secretbox`` seals short text
(``str`` in, ``v1.`` base64 text out); this seals bytes as bytes, the payloads being whole
messages.

A sealed value is ``b"\\x01" + nonce (12 bytes, random) + ciphertext and tag``; the
associated data names what the value is (the journal's column), so a sealed payload cannot
be passed off as a sealed response.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import ConfigurationError

__all__ = ["JOURNAL_PURPOSE", "AesGcmSealer", "Sealer", "UnavailableSealer", "journal_sealer"]

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


def journal_sealer(key: bytes | None) -> Sealer:
    """The message journal's sealer under ``key`` (``engine.secretbox.load_key``); without a
    key, sealing or opening says why it cannot."""
    if key is not None:
        return AesGcmSealer(key, JOURNAL_PURPOSE)
    return UnavailableSealer("the journal's payloads are sealed: this needs "
                             "PORTALBRIDGE_SECRET_KEY (or PORTALBRIDGE_SECRET_KEY_FILE)")
