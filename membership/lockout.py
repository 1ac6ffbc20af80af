"""Account lockout (specification 5.2): failed sign-ins per account, and the mechanisms that
decide when they lock it.

Pure and clock-free: every function takes ``now``. A member's ``LockoutState`` keeps the
times of the last few failures and the count of successive ones; each mechanism looks at them
after a failure and may return a ``Lock``. Two mechanisms are built in (both may run at once):

- ``TimeBased``: ``failures`` failures within ``window`` (default 3 within 5 minutes);
- ``SuccessiveFailures``: ``failures`` failures in a row, however far apart.

Each locks for a duration or indefinitely (until a password reset). Failures made while the
account is locked are not counted; a lock, once imposed, starts the counts afresh; a
successful sign-in clears them.

A custom mechanism is a subclass of ``LockoutMechanism`` named in routing.yaml
(``membership.lockout.custom: package.module:Class``, with ``custom_options`` passed to its
constructor as keyword strings). It implements one method::

    class OfficeHoursLockout(LockoutMechanism):
        name = "office-hours"
        remembers = 5           # how many recent failure times it wants to see

        def lock_after(self, failures, successive, now):
            if len(failures) >= 5 and not 8 <= now.hour < 18:
                return Lock(until=None, mechanism=self.name)   # None: until a reset
            return None
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from membership.policies import LockoutPolicy, LockRule

__all__ = ["Lock", "Lockout", "LockoutMechanism", "LockoutState", "SuccessiveFailures",
           "TimeBased", "lockout_for"]


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock a mechanism imposes: until an instant, or indefinitely (``until`` None)."""

    until: datetime | None
    mechanism: str

    def stronger_than(self, other: Lock | None) -> bool:
        if other is None:
            return True
        if other.until is None:
            return False
        return self.until is None or self.until > other.until


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutState:
    """One account's failed sign-ins and its current lock."""

    failures: tuple[datetime, ...] = ()  # the most recent failure times, oldest first
    successive: int = 0
    locked_at: datetime | None = None
    locked_until: datetime | None = None  # None with ``locked_at`` set: indefinite
    mechanism: str = ""

    @property
    def has_lock(self) -> bool:
        return self.locked_at is not None

    @property
    def indefinite(self) -> bool:
        return self.locked_at is not None and self.locked_until is None

    @property
    def clean(self) -> bool:
        """Nothing to remember: no failures, no lock."""
        return not self.failures and not self.successive and not self.has_lock

    def locked(self, now: datetime) -> bool:
        """Locked at ``now``: indefinitely, or until ``locked_until`` (unlocked at that second)."""
        if self.locked_at is None:
            return False
        return self.locked_until is None or now < self.locked_until

    def lock_ended(self, now: datetime) -> bool:
        """A timed lock is recorded and its time is over."""
        return self.locked_until is not None and now >= self.locked_until


class LockoutMechanism(ABC):
    """Decides, after each failed sign-in, whether the account is now locked."""

    name: str = "custom"
    #: How many of the most recent failure times ``lock_after`` needs to see.
    remembers: int = 0

    @abstractmethod
    def lock_after(self, failures: Sequence[datetime], successive: int, now: datetime) -> Lock | None:
        """The lock this failure triggers, or None. ``failures`` are the recent failure
        times, oldest first, this one (``now``) last; ``successive`` counts failures in a row
        since the last success or lock, this one included."""


def _until(now: datetime, lock: timedelta | None) -> datetime | None:
    return None if lock is None else now + lock


class TimeBased(LockoutMechanism):
    """``failures`` failures within ``window`` (first to last, inclusive) lock the account."""

    name = "time-based"

    def __init__(self, failures: int, window: timedelta, lock: timedelta | None) -> None:
        self.failures, self.window, self.lock = failures, window, lock
        self.remembers = failures

    def lock_after(self, failures: Sequence[datetime], successive: int, now: datetime) -> Lock | None:
        recent = failures[-self.failures:]
        if len(recent) == self.failures and now - recent[0] <= self.window:
            return Lock(_until(now, self.lock), self.name)
        return None


class SuccessiveFailures(LockoutMechanism):
    """``failures`` failures in a row, with no time limit, lock the account."""

    name = "successive-failure"

    def __init__(self, failures: int, lock: timedelta | None) -> None:
        self.failures, self.lock = failures, lock

    def lock_after(self, failures: Sequence[datetime], successive: int, now: datetime) -> Lock | None:
        return Lock(_until(now, self.lock), self.name) if successive >= self.failures else None


class Lockout:
    """The mechanisms in force, applied to one account's state at a time."""

    def __init__(self, mechanisms: Sequence[LockoutMechanism]) -> None:
        self.mechanisms = tuple(mechanisms)
        self._keep = max((m.remembers for m in self.mechanisms), default=0)

    def failed(self, state: LockoutState, now: datetime) -> tuple[LockoutState, Lock | None]:
        """Count one failed sign-in; the new state and the lock it imposed (if any).

        While locked nothing is counted; an ended timed lock is forgotten first."""
        if state.locked(now):
            return state, None
        if state.has_lock:
            state = LockoutState()
        failures = (*state.failures, now)[-self._keep:] if self._keep else ()
        successive = state.successive + 1
        lock: Lock | None = None
        for mechanism in self.mechanisms:
            found = mechanism.lock_after(failures, successive, now)
            if found is not None and found.stronger_than(lock):
                lock = found
        if lock is None:
            return replace(state, failures=failures, successive=successive), None
        return LockoutState(locked_at=now, locked_until=lock.until, mechanism=lock.mechanism), lock

    @staticmethod
    def succeeded(state: LockoutState, now: datetime) -> LockoutState:
        """A successful sign-in (never while locked) forgets the failures and an ended lock."""
        return state if state.locked(now) else LockoutState()

    @staticmethod
    def cleared() -> LockoutState:
        """A password reset (or a staff unlock): no lock, no failures."""
        return LockoutState()


def _built_in(rule: LockRule | None, time_based: bool) -> list[LockoutMechanism]:
    if rule is None:
        return []
    if time_based and rule.window is not None:
        return [TimeBased(rule.failures, rule.window, rule.lock)]
    return [SuccessiveFailures(rule.failures, rule.lock)]


def lockout_for(policy: LockoutPolicy, custom: LockoutMechanism | None = None) -> Lockout:
    """The mechanisms a policy turns on, plus a custom one the engine loaded for it."""
    mechanisms = [*_built_in(policy.time_based, True), *_built_in(policy.successive, False)]
    if custom is not None:
        mechanisms.append(custom)
    return Lockout(mechanisms)
