"""Blocking components (the relay, queue workers) on their own threads, and a liveness file.

A component is a function ``run(stop)`` that returns when ``stop`` is set. An exception that
escapes it (a configuration error, a bug) is kept and reported through ``on_failure`` so the
process stops instead of running on without the component.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["Background", "touch_while_alive"]

log = logging.getLogger(__name__)


class Background:
    """One blocking component on a daemon thread."""

    def __init__(self, name: str, run: Callable[[threading.Event], None],
                 on_failure: Callable[[BaseException], object] | None = None) -> None:
        self.name = name
        self._run = run
        self._on_failure = on_failure
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the component to finish and wait for it."""
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s did not stop within %.0f s", self.name, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            self._run(self.stop_event)
        except BaseException as exc:
            self.error = exc
            log.error("%s stopped: %s", self.name, exc, exc_info=not hasattr(exc, "reason"))
            if self._on_failure is not None:
                self._on_failure(exc)


async def touch_while_alive(path: Path, alive: Callable[[], bool], stop: asyncio.Event,
                            every: float = 5.0) -> None:
    """Touch ``path`` every ``every`` seconds while ``alive()``: a container health check
    reads its age (``docker-compose.yml``)."""
    while not stop.is_set():
        if alive():
            await asyncio.to_thread(path.touch)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            continue

