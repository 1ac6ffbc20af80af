"""Temporary passphrases: the rules they must meet and a generator from a word dictionary.

A temporary passphrase is entered twice by a Workbench user (or generated), kept only as a
slow salted hash and asked for once, at activation.
"""

from __future__ import annotations

from membership.errors import PolicyViolation
from membership.policies import PassphrasePolicy, PassphraseUse
from membership.tokens import RandomSource
from membership.validators import (
    CommonChoices,
    SecretValidator,
    character_validators,
    check_secret,
    shipped_common_passwords,
    shipped_passphrase_words,
)

__all__ = ["PassphraseRules"]

_DIGITS = "0123456789"


class PassphraseRules:
    """What the passphrase policy allows, checks and generates."""

    def __init__(self, policy: PassphrasePolicy) -> None:
        self.policy = policy
        self._words = tuple(dict.fromkeys((*shipped_passphrase_words(), *policy.extra_words)))
        common = CommonChoices((*shipped_common_passwords(), *policy.extra_common))
        self.validators: list[SecretValidator] = [*character_validators(policy.characters), common]

    @property
    def words(self) -> tuple[str, ...]:
        return self._words

    def accept(self, passphrase: str | None, repeated: str | None = None) -> str | None:
        """The passphrase to keep for a new enrollment (None: none), or ``PolicyViolation``.

        ``repeated`` is the second entry of a form; when given it must be equal.
        """
        use = self.policy.use
        if not passphrase:
            if use is PassphraseUse.REQUIRED:
                raise PolicyViolation("a temporary passphrase is required")
            return None
        if use is PassphraseUse.NOT_PERMITTED:
            raise PolicyViolation("temporary passphrases are not permitted")
        if repeated is not None and repeated != passphrase:
            raise PolicyViolation("the two passphrase entries differ")
        check_secret("the passphrase", passphrase, self.validators)
        return passphrase

    @property
    def generates(self) -> bool:
        """Generated only when passphrases are in use and sent with the token (specification)."""
        return (self.policy.use is not PassphraseUse.NOT_PERMITTED and self.policy.send_with_token
                and self.policy.generate)

    def generate(self, random: RandomSource) -> str:
        """Words from the dictionary joined by dashes, adjusted to meet the character rules."""
        for _ in range(100):
            words = [self._words[random.below(len(self._words))]
                     for _ in range(self.policy.generated_words)]
            candidate = self._meet_mix(words, random)
            if all(v.validate(candidate) is None for v in self.validators):
                return candidate
        raise PolicyViolation("no passphrase meeting the rules could be generated: "
                              "the dictionary is too small for the rules")

    def _meet_mix(self, words: list[str], random: RandomSource) -> str:
        rules = self.policy.characters
        upper = rules.min_upper
        words = [w.capitalize() if i < upper else w for i, w in enumerate(words)]
        text = "-".join(words)
        missing_upper = rules.min_upper - sum(c.isupper() for c in text)
        text += "".join(chr(65 + random.below(26)) for _ in range(max(0, missing_upper)))
        text += "".join(_DIGITS[random.below(10)] for _ in range(rules.min_digits))
        missing_other = rules.min_other - sum(not c.isalnum() for c in text)
        text += "!" * max(0, missing_other)
        while len(text) < rules.min_length:
            text += "-" + self._words[random.below(len(self._words))]
        return text
