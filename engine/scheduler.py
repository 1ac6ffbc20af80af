"""Scheduled membership tasks (``portalbridge scheduler``, also inside ``serve``):

- "deactivate expired passwords" (2.2.1, 5.1): with ``membership.password.expire_after`` set
  and ``deactivate_expired: true``, active members whose password is older are marked; they
  must choose a new one at the next sign-in (an audit entry each);
- timed locks whose time is over are ended (``member.unlocked``, when selected), so the
  event leaves when the lock ends rather than at the member's next attempt;
- sessions past their idle or absolute lifetime are deleted.

Each pass reads candidate ids (a bounded batch) and hands them to the group committer as one
command: the writer re-checks every member, so several schedulers on one database at once
only share the work. A failed pass is logged and tried again at the next one.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from engine.commands import Command, MessageOrigin, Outcome
from engine.domain.clock import Clock
from engine.member_commands import SweepCredentials
from engine.store.member_queries import MemberQueries
from engine.store.sessions import SessionStore
from membership.policies import PasswordPolicy

__all__ = ["Scheduler", "SchedulerPass"]

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True, slots=True)
class SchedulerPass:
    """What one pass did."""

    passwords_expired: int
    locks_ended: int
    sessions_ended: int


class Scheduler:
    """Runs the membership tasks every ``every`` seconds until stopped."""

    def __init__(self, *, queries: MemberQueries, sessions: SessionStore, clock: Clock,
                 password: PasswordPolicy, submit: Callable[[Command], Future[Outcome]],
                 every: float = 60.0) -> None:
        self._queries = queries
        self._sessions = sessions
        self._clock = clock
        self._password = password
        self._submit = submit
        self.every = every

    def run_once(self) -> SchedulerPass:
        """One pass of every task; raises what the store raises."""
        now = self._clock.now()
        expired = 0
        after = self._password.expire_after
        if after is not None and self._password.deactivate_expired:
            expired = self._sweep("expire_passwords", self._queries.expired_passwords(now - after, BATCH))
        ended = self._sweep("end_locks", self._queries.ended_locks(now, BATCH))
        done = SchedulerPass(expired, ended, self._sessions.purge(now))
        if any((done.passwords_expired, done.locks_ended, done.sessions_ended)):
            log.info("scheduler: %d password(s) deactivated, %d lock(s) ended, %d session(s) ended",
                     done.passwords_expired, done.locks_ended, done.sessions_ended)
        return done

    def _sweep(self, action: Literal["expire_passwords", "end_locks"], member_ids: list[str]) -> int:
        if not member_ids:
            return 0
        origin = MessageOrigin(channel="scheduler", sender="scheduler", control_id=str(uuid.uuid4()),
                               message_type=action, facility="")
        outcome = self._submit(SweepCredentials(origin=origin, action=action,
                                                member_ids=tuple(member_ids))).result()
        return int(outcome.member or 0)

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - a failed pass never stops the process
                log.warning("scheduler: pass failed, tried again in %.0f s: %s", self.every,
                            getattr(exc, "reason", type(exc).__name__))
            stop.wait(self.every)
