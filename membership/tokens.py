"""Activation and reset tokens: random, stored only as a digest (plus a sealed copy for
"Resend"), compared in constant time, valid for a window from issue.

A token is 128 bits from the injected ``RandomSource``, written as 26 base32 letters and
digits (people type them from paper when activation is printed); input is normalised by
dropping spaces and dashes and upper-casing. Lookup uses its SHA-256 digest, which is enough
for a value with 128 bits of entropy (no dictionary to try); the sealed copy is encrypted with
the ``SecretBox`` so the same token can be sent again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = [
    "TOKEN_BYTES",
    "ActivationToken",
    "RandomSource",
    "SecretBox",
    "SystemRandom",
    "new_token_text",
    "normalise_token",
    "token_digest",
]

TOKEN_BYTES = 16  # 128 bits


class RandomSource(ABC):
    """Cryptographically strong randomness (injected so tests are repeatable)."""

    @abstractmethod
    def bytes(self, count: int) -> bytes:
        """``count`` random bytes."""

    def below(self, limit: int) -> int:
        """A uniform integer in ``[0, limit)``."""
        width = max(1, (limit.bit_length() + 7) // 8 + 1)
        while True:  # rejection sampling keeps it uniform
            value = int.from_bytes(self.bytes(width), "big")
            span = (256 ** width) - (256 ** width) % limit
            if value < span:
                return value % limit


class SystemRandom(RandomSource):
    """The operating system's randomness (``secrets``)."""

    def bytes(self, count: int) -> bytes:
        return secrets.token_bytes(count)

    def below(self, limit: int) -> int:
        return secrets.randbelow(limit)


class SecretBox(ABC):
    """Encrypts small secrets at rest (tokens kept for "Resend", secrets in notifications)."""

    @abstractmethod
    def seal(self, plaintext: str) -> str:
        """An opaque, authenticated ciphertext of ``plaintext`` (ASCII)."""

    @abstractmethod
    def open(self, sealed: str) -> str:
        """The plaintext of ``sealed``; raises ``ValueError`` when it was tampered with."""


def new_token_text(random: RandomSource) -> str:
    """A fresh token: 128 random bits as 26 base32 characters."""
    return base64.b32encode(random.bytes(TOKEN_BYTES)).decode("ascii").rstrip("=")


def normalise_token(text: str) -> str:
    """What a person typed, as the token is stored: no spaces or dashes, upper case."""
    return "".join(text.split()).replace("-", "").upper()


def token_digest(text: str) -> str:
    """The SHA-256 (hex) under which a token is looked up."""
    return hashlib.sha256(normalise_token(text).encode("ascii", errors="replace")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationToken:
    """A member's current token: digest, sealed copy, validity and failed attempts."""

    digest: str
    sealed: str
    issued_at: datetime
    expires_at: datetime
    failures: int = 0
    first_failure_at: datetime | None = None
    locked_until: datetime | None = None

    @classmethod
    def issue(cls, text: str, box: SecretBox, now: datetime, valid_for: timedelta) -> ActivationToken:
        return cls(digest=token_digest(text), sealed=box.seal(text), issued_at=now,
                   expires_at=now + valid_for)

    def matches(self, text: str) -> bool:
        """Constant-time comparison of digests."""
        return hmac.compare_digest(self.digest, token_digest(text))

    def expired(self, now: datetime) -> bool:
        """Valid up to and including ``expires_at``; expired one instant after."""
        return now > self.expires_at

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def renewed(self, now: datetime, valid_for: timedelta) -> ActivationToken:
        """The same token, valid for ``valid_for`` from now, with its failures forgotten."""
        return replace(self, expires_at=now + valid_for, failures=0, first_failure_at=None,
                       locked_until=None)

    def failed(self, now: datetime, max_failures: int, window: timedelta,
               lock: timedelta) -> ActivationToken:
        """Count one failed attempt; ``max_failures`` within ``window`` lock it for ``lock``."""
        start = self.first_failure_at
        if start is None or now - start > window:
            start, failures = now, 1
        else:
            failures = self.failures + 1
        locked_until = now + lock if failures >= max_failures else self.locked_until
        if failures >= max_failures:
            start, failures = None, 0  # a new window starts after the lock
        return replace(self, failures=failures, first_failure_at=start, locked_until=locked_until)
