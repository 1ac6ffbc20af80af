"""Run the engine's components on a background thread (the demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading

from engine.bootstrap import Runtime, run_components

__all__ = ["EngineThread"]


class EngineThread(threading.Thread):
    """``run_components`` on its own event loop, started and stopped from another thread."""

    def __init__(self, runtime: Runtime, components: frozenset[str]) -> None:
        super().__init__(name="portalbridge-engine", daemon=True)
        self.runtime = runtime
        self._components = components
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
        await run_components(self.runtime, self._components, stop=self._stop_event,
                             on_ready=lambda _runtime: self._ready.set())

    def wait_ready(self, timeout: float = 30.0) -> dict[str, int]:
        """The bound ports once every component listens; raises why it did not start."""
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the engine did not start: {self._error!r}")
        return dict(self.runtime.bound_ports)

    def shutdown(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout)

    def __enter__(self) -> EngineThread:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
