"""Password and passphrase hashing: slow salted hashers behind one interface.

Like ``django.contrib.auth.hashers``: an encoded hash names its algorithm and parameters
(``pbkdf2_sha256$65536$<salt>$<hash>``, ``argon2$<argon2 string>``), any known algorithm can
verify, and ``must_update`` says when a stored hash no longer matches the preferred hasher
or its parameters, so the caller can store a new hash at the next successful sign-in.

Hashing is slow on purpose (tens of milliseconds): callers run it on a thread pool, never
on the event loop or the database writer thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret, verify_secret

from membership.policies import HasherName, PasswordPolicy
from membership.tokens import RandomSource

__all__ = ["Argon2idHasher", "Hashers", "PasswordHasher", "Pbkdf2Sha256Hasher", "Verification",
           "hashers_for"]


class PasswordHasher(ABC):
    """One algorithm with its parameters."""

    algorithm: str

    @abstractmethod
    def encode(self, secret: str) -> str:
        """A new salted hash of ``secret``."""

    @abstractmethod
    def verify(self, secret: str, encoded: str) -> bool:
        """Whether ``secret`` matches ``encoded`` (constant time)."""

    @abstractmethod
    def must_update(self, encoded: str) -> bool:
        """Whether ``encoded`` was made with other parameters than this hasher's."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Pbkdf2Sha256Hasher(PasswordHasher):
    """PBKDF2-HMAC-SHA256 (the specification's default: 65,536 iterations, 64-byte salt)."""

    algorithm = "pbkdf2_sha256"

    def __init__(self, random: RandomSource, *, iterations: int = 65_536, salt_bytes: int = 64) -> None:
        self._random = random
        self.iterations = iterations
        self.salt_bytes = salt_bytes

    def encode(self, secret: str) -> str:
        salt = self._random.bytes(self.salt_bytes)
        return self._encode(secret, salt, self.iterations)

    def _encode(self, secret: str, salt: bytes, iterations: int) -> str:
        digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
        return f"{self.algorithm}${iterations}${_b64(salt)}${_b64(digest)}"

    def verify(self, secret: str, encoded: str) -> bool:
        parts = encoded.split("$")
        if len(parts) != 4 or parts[0] != self.algorithm or not parts[1].isdigit():
            return False
        salt = base64.b64decode(parts[2])
        return hmac.compare_digest(self._encode(secret, salt, int(parts[1])), encoded)

    def must_update(self, encoded: str) -> bool:
        parts = encoded.split("$")
        if len(parts) != 4 or parts[0] != self.algorithm:
            return True
        return int(parts[1]) != self.iterations or len(base64.b64decode(parts[2])) != self.salt_bytes


class Argon2idHasher(PasswordHasher):
    """argon2id through argon2-cffi, salt from our ``RandomSource``."""

    algorithm = "argon2"

    def __init__(self, random: RandomSource, *, time_cost: int = 3, memory_kib: int = 65_536,
                 parallelism: int = 1, salt_bytes: int = 16) -> None:
        self._random = random
        self.time_cost = time_cost
        self.memory_kib = memory_kib
        self.parallelism = parallelism
        self.salt_bytes = salt_bytes

    def encode(self, secret: str) -> str:
        raw = hash_secret(secret.encode("utf-8"), self._random.bytes(self.salt_bytes),
                          time_cost=self.time_cost, memory_cost=self.memory_kib,
                          parallelism=self.parallelism, hash_len=32, type=Type.ID)
        return f"{self.algorithm}${raw.decode('ascii')}"

    def verify(self, secret: str, encoded: str) -> bool:
        prefix, _, raw = encoded.partition("$")
        if prefix != self.algorithm:
            return False
        try:
            return verify_secret(raw.encode("ascii"), secret.encode("utf-8"), Type.ID)
        except (VerificationError, ValueError):
            return False

    def must_update(self, encoded: str) -> bool:
        prefix, _, raw = encoded.partition("$")
        if prefix != self.algorithm:
            return True
        try:
            params = extract_parameters(raw)
        except InvalidHashError:
            return True
        return (params.time_cost, params.memory_cost, params.parallelism) != (
            self.time_cost, self.memory_kib, self.parallelism)


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of checking a secret: whether it matched and whether to store a new hash."""

    ok: bool
    must_update: bool = False


class Hashers:
    """The preferred hasher, plus every hasher that can still verify old hashes."""

    def __init__(self, preferred: PasswordHasher, others: Sequence[PasswordHasher] = ()) -> None:
        self.preferred = preferred
        self._by_algorithm = {h.algorithm: h for h in (*others, preferred)}

    def hash(self, secret: str) -> str:
        return self.preferred.encode(secret)

    def check(self, secret: str, encoded: str) -> Verification:
        """Verify with the hash's own algorithm; ``must_update`` when it is not the preferred
        one or has other parameters (the django.contrib.auth ``check_password`` habit)."""
        hasher = self._by_algorithm.get(encoded.split("$", 1)[0])
        if hasher is None or not hasher.verify(secret, encoded):
            if hasher is None:  # spend the same time as a real check: no timing oracle
                self.preferred.encode(secret)
            return Verification(False)
        return Verification(True, hasher is not self.preferred or hasher.must_update(encoded))


def hashers_for(policy: PasswordPolicy, random: RandomSource) -> Hashers:
    """The hashers a password policy asks for (both algorithms can always verify)."""
    pbkdf2 = Pbkdf2Sha256Hasher(random, iterations=policy.iterations, salt_bytes=policy.salt_bytes)
    argon2 = Argon2idHasher(random, time_cost=policy.argon2_time_cost,
                            memory_kib=policy.argon2_memory_kib,
                            parallelism=policy.argon2_parallelism)
    if policy.hasher is HasherName.ARGON2ID:
        return Hashers(argon2, [pbkdf2])
    return Hashers(pbkdf2, [argon2])
