"""The writer watchdog: a writer stuck on one group turns readiness off and says so, once.

A writer thread can wait a long time on the database (a lock another session holds, a
statement timeout set high, a server that stopped answering). Every message queued behind
it then waits too, and nothing would tell the operator. The watchdog looks at how long each
writer has been busy with its current group; past ``threshold`` seconds it reports the stall
(``problem()``, which ``/readyz`` turns into a 503 with the reason) and writes one warning;
when the writer moves on it writes one line more and readiness comes back. It measures wall
time on its own thread, so it does not depend on any database timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Busy", "WriterWatchdog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Busy:
    """What one writer is doing: since when (monotonic seconds) and how many messages."""

    since: float
    messages: int


class WriterWatchdog:
    """Watches ``busy()`` (writer name -> ``Busy``) from a daemon thread."""

    def __init__(self, busy: Callable[[], dict[str, Busy]], threshold: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._busy = busy
        self.threshold = threshold
        self._clock = clock
        self._reported: dict[str, Busy] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="writer-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def problem(self) -> str | None:
        """Why the writers are not ready (a stall), or None; logs what changed since last asked."""
        now = self._clock()
        busy = self._busy()
        stalled = {name: state for name, state in busy.items()
                   if now - state.since >= self.threshold}
        with self._lock:
            self._log_changes(stalled, now)
        if not stalled:
            return None
        name, state = max(stalled.items(), key=lambda item: now - item[1].since)
        return (f"{name} has been applying one group of {state.messages} message(s) for "
                f"{now - state.since:.0f} s (threshold {self.threshold:g} s)")

    def _log_changes(self, stalled: dict[str, Busy], now: float) -> None:
        for name in [n for n, state in self._reported.items() if stalled.get(n) != state]:
            state = self._reported.pop(name)
            log.warning("writer moved again: %s finished the group it was stuck on after %.0f s",
                        name, now - state.since)
        for name, state in stalled.items():
            if name not in self._reported:
                self._reported[name] = state
                log.warning("writer stalled: %s has been applying one group of %d message(s) "
                            "for %.0f s (threshold %g s); readiness fails until it moves (is "
                            "the database waiting on a lock, or unreachable?)", name,
                            state.messages, now - state.since, self.threshold)

    def _watch(self) -> None:
        every = min(max(self.threshold / 4, 0.05), 5.0)
        while not self._stop.wait(every):
            self.problem()
