"""Two-factor codes (5.3): valid 6 minutes to the second, single use, limited attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from membership.otp import issue_challenge
from tests.fakes import CountingRandom

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SIX = timedelta(minutes=6)


def test_a_code_is_six_digits_and_valid_until_exactly_six_minutes() -> None:
    otp, challenge, code = issue_challenge(CountingRandom(), T0, SIX)
    assert len(code) == 6 and code.isdigit()
    assert not otp.expired(T0 + SIX - timedelta(seconds=1))
    assert otp.expired(T0 + SIX)  # at 6:00 it is over
    assert otp.matches(challenge, code) and otp.matches(challenge.lower(), f" {code} ")
    assert not otp.matches(challenge, str((int(code) + 1) % 10 ** 6).zfill(6))


def test_the_code_is_bound_to_its_challenge_and_not_stored() -> None:
    random = CountingRandom()
    first, challenge1, code1 = issue_challenge(random, T0, SIX)
    second, challenge2, _ = issue_challenge(random, T0, SIX)
    assert challenge1 != challenge2 and first.digest != second.digest
    assert not second.matches(challenge2, code1) or first.code_mac != second.code_mac
    assert code1 not in first.code_mac and challenge1 not in first.digest
