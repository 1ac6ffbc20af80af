"""Rules for secrets people choose (passwords, temporary passphrases): small classes with
``validate()`` and ``help_text()``, as django.contrib.auth's password validators.

``validate`` raises nothing: it returns the problem (or None), so a caller can report every
broken rule at once through ``check_secret``.
"""

from __future__ import annotations

import gzip
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources

from membership.errors import PolicyViolation
from membership.passwords import Hashers
from membership.policies import CharacterRules

__all__ = [
    "CommonChoices",
    "MinimumLength",
    "MinimumOfKind",
    "NotRecentlyUsed",
    "SecretValidator",
    "character_validators",
    "check_secret",
    "shipped_common_passwords",
    "shipped_passphrase_words",
]


class SecretValidator(ABC):
    """One rule."""

    @abstractmethod
    def validate(self, secret: str) -> str | None:
        """The problem with ``secret``, or None when it satisfies the rule."""

    @abstractmethod
    def help_text(self) -> str:
        """The rule in words, for forms and error messages."""


class MinimumLength(SecretValidator):
    def __init__(self, length: int) -> None:
        self.length = length

    def validate(self, secret: str) -> str | None:
        return None if len(secret) >= self.length else f"must be at least {self.length} characters long"

    def help_text(self) -> str:
        return f"At least {self.length} characters."


_KINDS = {
    "upper": ("upper-case letter", str.isupper),
    "lower": ("lower-case letter", str.islower),
    "digit": ("digit", str.isdigit),
    "other": ("character that is not a letter or digit", lambda c: not c.isalnum()),
}


class MinimumOfKind(SecretValidator):
    """At least ``count`` characters of one kind: upper, lower, digit or other."""

    def __init__(self, kind: str, count: int) -> None:
        self.kind = kind
        self.count = count
        self._name, self._test = _KINDS[kind]

    def validate(self, secret: str) -> str | None:
        found = sum(1 for c in secret if self._test(c))
        if found >= self.count:
            return None
        plural = "s" if self.count > 1 else ""
        return f"must contain at least {self.count} {self._name}{plural}"

    def help_text(self) -> str:
        return f"At least {self.count} {self._name}(s)."


class CommonChoices(SecretValidator):
    """Refuses values found in a dictionary of common choices (compared case-insensitively)."""

    def __init__(self, words: Iterable[str]) -> None:
        self._words = frozenset(w.strip().lower() for w in words if w.strip())

    def validate(self, secret: str) -> str | None:
        return "is too common: it is in the dictionary of easily guessed values" \
            if secret.strip().lower() in self._words else None

    def help_text(self) -> str:
        return "Not a commonly used value."


class NotRecentlyUsed(SecretValidator):
    """Refuses a password equal to one of the member's previous ones (slow: one hash each)."""

    def __init__(self, previous: Sequence[str], hashers: Hashers) -> None:
        self._previous = previous
        self._hashers = hashers

    def validate(self, secret: str) -> str | None:
        if any(self._hashers.check(secret, old).ok for old in self._previous):
            return f"must not be one of your last {len(self._previous)} passwords"
        return None

    def help_text(self) -> str:
        return "Not one of your recent passwords."


def character_validators(rules: CharacterRules) -> list[SecretValidator]:
    """The length and character-mix rules; a kind whose minimum is 0 is no rule."""
    validators: list[SecretValidator] = [MinimumLength(rules.min_length)]
    for kind, count in (("upper", rules.min_upper), ("lower", rules.min_lower),
                        ("digit", rules.min_digits), ("other", rules.min_other)):
        if count > 0:
            validators.append(MinimumOfKind(kind, count))
    return validators


def check_secret(what: str, secret: str, validators: Iterable[SecretValidator]) -> None:
    """Raise ``PolicyViolation`` naming every rule ``secret`` breaks."""
    problems = tuple(f"{what} {p}" for v in validators if (p := v.validate(secret)) is not None)
    if problems:
        raise PolicyViolation("; ".join(problems), problems)


@cache
def shipped_common_passwords() -> frozenset[str]:
    """The common-password list that ships (20,000 entries, from Django; see SOURCES.md)."""
    data = resources.files("membership").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


@cache
def shipped_passphrase_words() -> tuple[str, ...]:
    """The passphrase generator's dictionary (EFF short word list; see SOURCES.md)."""
    text = resources.files("membership").joinpath("data/passphrase-words.txt").read_text("utf-8")
    return tuple(w for w in text.split() if w)
