"""Stopping within ``PORTALBRIDGE_SHUTDOWN_TIMEOUT``, whatever is stuck.

The orderly stop (``engine.bootstrap``) gives each step what is left of its budget and leaves
a step that overruns behind; the CLI arms ``exit_after`` as stopping starts, because the
interpreter may still wait on its way out for threads stuck in a database call. Ending the
process loses nothing: every message was acknowledged only after its commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable

__all__ = ["StopBudget", "exit_after", "within"]

log = logging.getLogger(__name__)


class StopBudget:
    """What an orderly stop of ``timeout`` seconds may spend, from now.

    It keeps back a second (a fifth of longer timeouts, at most half of short ones) for the
    interpreter's own exit, about half a second on the build machine, so that the process is
    normally gone before ``exit_after`` has to end it.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadline = time.monotonic() + max(timeout / 2, timeout - max(1.0, timeout / 5))

    def left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())


async def within(step: Awaitable[object], seconds: float) -> bool:
    """Whether ``step`` finished within ``seconds`` (it is cancelled if not, unless shielded)."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        return False
    return True


def exit_after(seconds: float, setting: str = "PORTALBRIDGE_SHUTDOWN_TIMEOUT") -> threading.Timer:
    """End the process ``seconds`` from now if it has not exited by itself (exit code 1)."""
    def end() -> None:
        log.error("still stopping after %g s (%s): a writer, a request or the broker is "
                  "stuck; exiting now", seconds, setting)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()
    return timer
