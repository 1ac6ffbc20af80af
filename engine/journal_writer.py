"""Where adapters hand their journal entries, and the count of every message answered.

Entries of applied messages reach the store through the unit of work (``engine.committer``);
the rest are *deferred* here, from any thread, and the committer's writer takes them into
its next commit. The writer also counts every entry once it is final (committed or
deferred), which is what ``portalbridge_inbound_messages_total`` reports: a disabled
journal still counts, it only stores nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from engine.journal import JournalEntry

__all__ = ["MAX_DEFERRED", "JournalWriter"]

log = logging.getLogger(__name__)

#: Deferred entries kept in memory while the database cannot take them; beyond, the oldest go.
MAX_DEFERRED = 10_000

Observe = Callable[[JournalEntry], None]


class JournalWriter:
    """Deferred entries (thread-safe) and the observer that counts answered messages."""

    def __init__(self, *, enabled: bool, observe: Observe | None = None,
                 limit: int = MAX_DEFERRED) -> None:
        self.enabled = enabled
        self._observe = observe
        self._limit = limit
        self._lock = threading.Lock()
        self._deferred: deque[JournalEntry] = deque()
        self._wake: Callable[[], None] | None = None
        self.dropped = 0

    def wake_with(self, wake: Callable[[], None]) -> None:
        """``wake`` is called when a first entry is deferred (the committer's writer waits)."""
        self._wake = wake

    def defer(self, entry: JournalEntry) -> None:
        """Count ``entry`` and keep it for the next commit. Never raises to the caller."""
        self._count([entry])
        if not self.enabled:
            return
        with self._lock:
            first = not self._deferred
            self._deferred.append(entry)
            if len(self._deferred) > self._limit:
                self._deferred.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("journal: %d deferred entries dropped so far: the database has "
                                "not taken them (%d waiting)", self.dropped, len(self._deferred))
        if first and self._wake is not None:
            self._wake()

    def committed(self, entries: Iterable[JournalEntry]) -> None:
        """Count entries that were written with their messages' effects."""
        self._count(entries)

    @property
    def waiting(self) -> int:
        return len(self._deferred)

    def take(self, most: int = 1000) -> list[JournalEntry]:
        """Up to ``most`` deferred entries, oldest first; give them back if the commit fails."""
        with self._lock:
            count = min(most, len(self._deferred))
            return [self._deferred.popleft() for _ in range(count)]

    def give_back(self, entries: list[JournalEntry]) -> None:
        """Entries whose commit failed: first in line again (within the limit)."""
        with self._lock:
            self._deferred.extendleft(reversed(entries))
            while len(self._deferred) > self._limit:
                self._deferred.popleft()
                self.dropped += 1

    def _count(self, entries: Iterable[JournalEntry]) -> None:
        if self._observe is None:
            return
        for entry in entries:
            try:
                self._observe(entry)
            except Exception:  # counting must never cost a message its answer
                log.exception("journal: counting an entry failed")
