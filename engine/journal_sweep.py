"""The journal's retention sweep: entries older than ``journal.retention`` are deleted.

It runs in every process that receives messages (``serve``, ``listen``, ``api``,
``worker``) once at start and then every hour, on a thread of its own, deleting in short
transactions of a few thousand rows; several processes sweeping the same database only
share the work. ``portalbridge messages purge`` runs one sweep by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from engine.domain.clock import Clock
from engine.journal import JournalStore

__all__ = ["SWEEP_EVERY", "JournalSweep"]

log = logging.getLogger(__name__)

SWEEP_EVERY = 3600.0  # seconds between sweeps


class JournalSweep:
    """Deletes journal entries older than ``retention``, now and every ``every`` seconds."""

    def __init__(self, store: JournalStore, clock: Clock, retention: timedelta, *,
                 every: float = SWEEP_EVERY) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention
        self._every = every

    def sweep(self) -> int:
        """One sweep; how many entries it deleted. Raises ``StoreUnavailable``."""
        removed = self._store.purge(self._clock.now() - self.retention)
        if removed:
            log.info("journal: %d entries older than %s deleted", removed, self.retention)
        return removed

    def run(self, stop: threading.Event, on_cycle: Callable[[], None] | None = None) -> None:
        """Sweep until ``stop`` is set; a failed sweep is logged and tried at the next turn."""
        while not stop.is_set():
            if on_cycle is not None:
                on_cycle()
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001 - a sweep never stops the process
                log.warning("journal: retention sweep failed, tried again in %.0f s: %s",
                            self._every, getattr(exc, "reason", type(exc).__name__))
            stop.wait(self._every)
