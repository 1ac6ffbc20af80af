"""Account lockout (5.2), driven by a clock: every boundary to the second."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from membership.lockout import (
    Lock,
    Lockout,
    LockoutMechanism,
    LockoutState,
    lockout_for,
)
from membership.policies import LockoutPolicy, LockRule

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int = 0, seconds: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def fail(lockout: Lockout, state: LockoutState, *times: datetime) -> tuple[LockoutState, Lock | None]:
    lock = None
    for now in times:
        state, lock = lockout.failed(state, now)
    return state, lock


DEFAULT = lockout_for(LockoutPolicy())


def test_the_third_failure_within_five_minutes_locks_for_five_minutes() -> None:
    state, lock = fail(DEFAULT, LockoutState(), at(0), at(2), at(4, 59))
    assert lock == Lock(at(9, 59), "time-based")
    assert state.locked(at(9, 58))  # one second before the end
    assert not state.locked(at(9, 59))  # unlocked at the second the lock ends
    assert state.lock_ended(at(9, 59)) and not state.lock_ended(at(9, 58))


def test_the_third_failure_after_five_minutes_does_not_lock() -> None:
    state, lock = fail(DEFAULT, LockoutState(), at(0), at(2), at(5, 1))
    assert lock is None and not state.locked(at(5, 1))
    # the window slides: the failures at 2:00 and 5:01 and one more within 5 minutes lock
    state, lock = fail(DEFAULT, state, at(6))
    assert lock is not None and lock.until == at(11)


def test_exactly_five_minutes_still_counts_as_within_the_window() -> None:
    _, lock = fail(DEFAULT, LockoutState(), at(0), at(1), at(5, 0))
    assert lock is not None


def test_failures_while_locked_are_not_counted_and_do_not_extend_the_lock() -> None:
    state, _ = fail(DEFAULT, LockoutState(), at(0), at(0, 10), at(0, 20))
    locked = state
    state, lock = fail(DEFAULT, state, at(1), at(2), at(3))
    assert lock is None and state == locked


def test_after_a_lock_ends_the_count_starts_again() -> None:
    state, _ = fail(DEFAULT, LockoutState(), at(0), at(0, 10), at(0, 20))
    state, lock = fail(DEFAULT, state, at(5, 20), at(5, 30))  # two failures after the lock
    assert lock is None and not state.has_lock and len(state.failures) == 2
    state, lock = fail(DEFAULT, state, at(5, 40))
    assert lock is not None


def test_a_success_forgets_the_failures() -> None:
    state, _ = fail(DEFAULT, LockoutState(), at(0), at(1))
    state = DEFAULT.succeeded(state, at(2))
    _, lock = fail(DEFAULT, state, at(3))
    assert lock is None and state.clean


def test_successive_failures_with_no_time_limit_lock_indefinitely_until_reset() -> None:
    lockout = lockout_for(LockoutPolicy(time_based=None,
                                        successive=LockRule(failures=4, window=None, lock=None)))
    state, lock = fail(lockout, LockoutState(), at(0), at(60), at(600), at(6000))
    assert lock == Lock(None, "successive-failure") and state.indefinite
    assert state.locked(at(10 ** 6)) and not state.lock_ended(at(10 ** 6))
    assert lockout.succeeded(state, at(10 ** 6)) == state  # a success does not unlock it
    assert not lockout.cleared().locked(at(10 ** 6))  # a password reset does


def test_three_successive_failures_not_three_within_a_window() -> None:
    lockout = lockout_for(LockoutPolicy(time_based=None, successive=LockRule(
        failures=3, window=None, lock=timedelta(seconds=30))))
    state, lock = fail(lockout, LockoutState(), at(0), at(30), at(90))
    assert lock == Lock(at(90, 30), "successive-failure")
    assert not state.locked(at(90, 30))


def test_both_mechanisms_together_the_stronger_lock_wins() -> None:
    lockout = lockout_for(LockoutPolicy(successive=LockRule(failures=3, window=None, lock=None)))
    _, lock = fail(lockout, LockoutState(), at(0), at(1), at(2))
    assert lock == Lock(None, "successive-failure")  # indefinite beats five minutes
    _, lock = fail(lockout_for(LockoutPolicy(successive=LockRule(
        failures=3, window=None, lock=timedelta(minutes=1)))), LockoutState(), at(0), at(1), at(2))
    assert lock == Lock(at(7), "time-based")


def test_a_timed_time_based_lock_can_be_indefinite() -> None:
    lockout = lockout_for(LockoutPolicy(time_based=LockRule(
        failures=2, window=timedelta(seconds=10), lock=None)))
    state, lock = fail(lockout, LockoutState(), at(0), at(0, 10))
    assert lock == Lock(None, "time-based") and state.indefinite


def test_no_mechanism_never_locks() -> None:
    lockout = lockout_for(LockoutPolicy(time_based=None))
    state, lock = fail(lockout, LockoutState(), *(at(0, s) for s in range(50)))
    assert lock is None and not state.has_lock and state.failures == ()


class EveryOther(LockoutMechanism):
    """A custom mechanism: the interface the documentation shows."""

    name = "every-other"
    remembers = 4

    def lock_after(self, failures: Sequence[datetime], successive: int, now: datetime) -> Lock | None:
        assert failures[-1] == now and len(failures) <= self.remembers
        return Lock(now + timedelta(seconds=1), self.name) if successive % 2 == 0 else None


@pytest.mark.parametrize("with_builtin", [False, True])
def test_a_custom_mechanism_plugs_in(with_builtin: bool) -> None:
    policy = LockoutPolicy() if with_builtin else LockoutPolicy(time_based=None)
    lockout = lockout_for(policy, EveryOther())
    state, lock = fail(lockout, LockoutState(), at(0))
    assert lock is None
    state, lock = fail(lockout, state, at(10))
    assert lock == Lock(at(10, 1), "every-other")
