"""Tokens, hashers, password and passphrase rules, dictionaries and the generator."""

from __future__ import annotations

import base64

import pytest

from membership.errors import PolicyViolation
from membership.passphrases import PassphraseRules
from membership.passwords import Argon2idHasher, Hashers, Pbkdf2Sha256Hasher, hashers_for
from membership.policies import (
    CharacterRules,
    HasherName,
    PassphrasePolicy,
    PassphraseUse,
    PasswordPolicy,
)
from membership.tokens import new_token_text, normalise_token, token_digest
from membership.validators import (
    CommonChoices,
    MinimumLength,
    MinimumOfKind,
    NotRecentlyUsed,
    character_validators,
    check_secret,
    shipped_common_passwords,
    shipped_passphrase_words,
)
from tests.fakes import CountingRandom


def test_tokens_carry_128_bits_and_are_typed_forgivingly() -> None:
    text = new_token_text(CountingRandom())
    assert len(text) == 26 and len(base64.b32decode(text + "======")) == 16
    spaced = "-".join(text[i:i + 4] for i in range(0, 26, 4)).lower()
    assert normalise_token(spaced) == text
    assert token_digest(spaced) == token_digest(text)
    assert new_token_text(CountingRandom(1)) != text


def test_pbkdf2_defaults_are_the_specifications() -> None:
    hasher = Pbkdf2Sha256Hasher(CountingRandom())
    encoded = hasher.encode("Secret1")
    algorithm, iterations, salt, _digest = encoded.split("$")
    assert (algorithm, iterations, len(base64.b64decode(salt))) == ("pbkdf2_sha256", "65536", 64)
    assert hasher.verify("Secret1", encoded) and not hasher.verify("secret1", encoded)
    assert not hasher.must_update(encoded)


def test_hashes_made_with_other_parameters_must_update() -> None:
    old = Pbkdf2Sha256Hasher(CountingRandom(), iterations=1000, salt_bytes=16).encode("pw")
    current = Hashers(Pbkdf2Sha256Hasher(CountingRandom(), iterations=2000, salt_bytes=16))
    result = current.check("pw", old)
    assert result.ok and result.must_update


def test_switching_to_argon2id_verifies_old_hashes_and_asks_for_an_upgrade() -> None:
    random = CountingRandom()
    fast = PasswordPolicy(iterations=1000, argon2_memory_kib=8192, argon2_time_cost=1)
    old = hashers_for(fast, random).hash("pw")
    argon = hashers_for(PasswordPolicy(hasher=HasherName.ARGON2ID, iterations=1000,
                                       argon2_memory_kib=8192, argon2_time_cost=1), random)
    assert isinstance(argon.preferred, Argon2idHasher)
    check = argon.check("pw", old)
    assert check.ok and check.must_update
    new = argon.hash("pw")
    assert new.startswith("argon2$$argon2id$")
    assert argon.check("pw", new) == type(check)(True, False)
    assert not argon.check("nope", new).ok
    assert not argon.check("pw", "unknown$algo").ok


@pytest.mark.parametrize(("validator", "good", "bad", "message"), [
    (MinimumLength(6), "abcdef", "abcde", "at least 6 characters"),
    (MinimumOfKind("upper", 1), "aB", "ab", "upper-case"),
    (MinimumOfKind("lower", 2), "abC", "aBC", "2 lower-case letters"),
    (MinimumOfKind("digit", 1), "a1", "ab", "digit"),
    (MinimumOfKind("other", 1), "a!", "a1", "not a letter or digit"),
    (CommonChoices(["letmein"]), "unusual-words", "LetMeIn", "too common"),
])
def test_each_rule_alone(validator: object, good: str, bad: str, message: str) -> None:
    assert validator.validate(good) is None  # type: ignore[attr-defined]
    assert message in validator.validate(bad)  # type: ignore[attr-defined]
    assert validator.help_text()  # type: ignore[attr-defined]


def test_password_defaults_and_every_problem_reported() -> None:
    validators = character_validators(PasswordPolicy().characters)
    assert [type(v).__name__ for v in validators] == ["MinimumLength", "MinimumOfKind",
                                                      "MinimumOfKind", "MinimumOfKind"]
    check_secret("the password", "Secret1", validators)
    with pytest.raises(PolicyViolation) as caught:
        check_secret("the password", "abc", validators)
    assert len(caught.value.problems) == 3  # length, upper, digit


def test_history_refuses_reuse() -> None:
    hashers = Hashers(Pbkdf2Sha256Hasher(CountingRandom(), iterations=1000, salt_bytes=16))
    old = [hashers.hash("Old1pass"), hashers.hash("Older1pass")]
    rule = NotRecentlyUsed(old, hashers)
    assert "last 2 passwords" in (rule.validate("Older1pass") or "")
    assert rule.validate("Brand1new") is None


def test_shipped_dictionaries() -> None:
    common = shipped_common_passwords()
    assert len(common) > 19_000 and "password" in common and "qwerty" in common
    words = shipped_passphrase_words()
    assert len(words) == 1296 and all(w.replace("-", "").isalpha() for w in words)


def test_passphrase_use_policies() -> None:
    not_permitted = PassphraseRules(PassphrasePolicy(use=PassphraseUse.NOT_PERMITTED))
    assert not_permitted.accept(None) is None
    with pytest.raises(PolicyViolation, match="not permitted"):
        not_permitted.accept("blue-river-stone")
    permitted = PassphraseRules(PassphrasePolicy())
    assert permitted.accept(None) is None
    assert permitted.accept("blue-river-stone", "blue-river-stone") == "blue-river-stone"
    with pytest.raises(PolicyViolation, match="differ"):
        permitted.accept("blue-river-stone", "blue-river-ston")
    required = PassphraseRules(PassphrasePolicy(use=PassphraseUse.REQUIRED))
    with pytest.raises(PolicyViolation, match="required"):
        required.accept("")


def test_passphrase_rules_and_common_dictionary_with_analyst_additions() -> None:
    rules = PassphraseRules(PassphrasePolicy(characters=CharacterRules(min_length=8, min_digits=1),
                                             extra_common=("hospital1",)))
    with pytest.raises(PolicyViolation, match="at least 8"):
        rules.accept("abc1")
    with pytest.raises(PolicyViolation, match="digit"):
        rules.accept("abcdefgh")
    with pytest.raises(PolicyViolation, match="too common"):
        rules.accept("password1")  # shipped list
    with pytest.raises(PolicyViolation, match="too common"):
        rules.accept("Hospital1")  # the analysts' addition


def test_generator_meets_the_rules_and_uses_the_extended_dictionary() -> None:
    policy = PassphrasePolicy(send_with_token=True, generate=True, extra_words=("zebrafish",),
                              characters=CharacterRules(min_length=12, min_upper=2, min_digits=2,
                                                        min_other=1))
    rules = PassphraseRules(policy)
    assert rules.generates and "zebrafish" in rules.words
    random = CountingRandom()
    for _ in range(20):
        phrase = rules.generate(random)
        assert rules.accept(phrase) == phrase
    assert not PassphraseRules(PassphrasePolicy(generate=True)).generates  # not sent: not generated
