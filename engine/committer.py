"""Group commit: many messages, one transaction, and still one answer per message after commit.

One PostgreSQL commit per message caps near 1,200 messages/s on this kind of machine while
100 messages per commit pass 13,000/s. The listeners therefore hand their commands to one
writer thread, which takes whatever has queued up while the previous commit ran (no waiting
for a batch to fill, so a lone message is not delayed), applies the lot in one unit of work,
commits, and only then answers each message. If any command of a group fails, the group is
rolled back and its commands are applied one by one, so one bad message never costs the
others more than a retry.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from engine.commands import Command, Outcome
from engine.errors import EngineError, StoreUnavailable, TransientFailure
from engine.handlers import MessageBus
from engine.uow import UnitOfWork

__all__ = ["CommitStats", "GroupCommitter"]

log = logging.getLogger(__name__)

Result = tuple[Outcome | None, EngineError | None]
ErrorClassifier = Callable[[Exception], EngineError]


@dataclass(slots=True)
class _Job:
    command: Command
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Outcome] | Future[Outcome] | None = None


@dataclass(slots=True)
class CommitStats:
    """Counters for /metrics."""

    commits: int = 0
    messages: int = 0
    failures: int = 0
    largest_batch: int = 0


class _Stop:
    pass


_STOP = _Stop()


def classify_engine_error(exc: Exception) -> EngineError:
    """Default classification: our errors as they are, anything else an internal failure."""
    if isinstance(exc, EngineError):
        return exc
    return TransientFailure(f"internal error ({type(exc).__name__})")


class GroupCommitter:
    """Applies commands in group commits on a single writer thread."""

    def __init__(self, bus: MessageBus, unit_of_work: Callable[[], UnitOfWork], *,
                 classify: ErrorClassifier = classify_engine_error, max_batch: int = 256) -> None:
        self._bus = bus
        self._unit_of_work = unit_of_work
        self._classify = classify
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.stats = CommitStats()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="group-committer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- submitting -----------------------------------------------------------------------

    async def apply(self, command: Command) -> Outcome:
        """Apply ``command``; returns after its transaction committed, raises ``EngineError``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(_Job(command, loop, future))
        return await future

    def apply_blocking(self, command: Command, timeout: float | None = 30.0) -> Outcome:
        """``apply`` for threads that are not running an event loop."""
        future: Future[Outcome] = Future()
        self._queue.put(_Job(command, None, future))
        return future.result(timeout)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if isinstance(first, _Stop):
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(job, _Stop):
                    stopping = True
                    break
                batch.append(job)
            self._deliver(batch, self._process(batch))

    def _process(self, batch: list[_Job]) -> list[Result]:
        try:
            outcomes = self._apply_group([job.command for job in batch])
        except Exception as exc:  # noqa: BLE001 - classified below; no message is ever dropped
            if len(batch) > 1:
                # One bad command (or a concurrent writer) spoiled the group: go one by one.
                return [self._process_one(job) for job in batch]
            return [(None, self._failure(batch[0], exc))]
        return [(outcome, None) for outcome in outcomes]

    def _process_one(self, job: _Job) -> Result:
        for attempt in (1, 2):
            try:
                return self._apply_group([job.command])[0], None
            except Exception as exc:  # noqa: BLE001 - classified by _failure
                error = self._failure(job, exc)
                if not (isinstance(error, StoreUnavailable) and error.retry_at_once) or attempt == 2:
                    return None, error
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_group(self, commands: list[Command]) -> list[Outcome]:
        with self._unit_of_work() as uow:
            self._bus.prefetch(commands, uow)
            outcomes = [self._bus.handle(command, uow) for command in commands]
            uow.commit()
        self._count(len(commands))
        return outcomes

    def _failure(self, job: _Job, exc: Exception) -> EngineError:
        error = self._classify(exc)
        if isinstance(error, TransientFailure):
            self.stats.failures += 1
            origin = job.command.origin
            log.warning("could not apply %s %s from %s: %s", origin.message_type,
                        origin.control_id, origin.sender, error.reason,
                        exc_info=not isinstance(exc, EngineError))
        return error

    def _count(self, size: int) -> None:
        stats = self.stats
        stats.commits += 1
        stats.messages += size
        stats.largest_batch = max(stats.largest_batch, size)

    @staticmethod
    def _deliver(batch: list[_Job], results: list[Result]) -> None:
        """Answer every job; asyncio futures of one loop are resolved with one wake-up."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Result]]] = defaultdict(list)
        for job, result in zip(batch, results, strict=True):
            if job.loop is not None:
                by_loop[job.loop].append((job, result))
            elif isinstance(job.future, Future):
                _settle(job.future, result)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, items)
            except RuntimeError:
                log.warning("event loop closed before %d answers could be delivered", len(items))


def _settle_all(items: list[tuple[_Job, Result]]) -> None:
    for job, result in items:
        if job.future is not None and not job.future.done():
            _settle(job.future, result)


def _settle(future: asyncio.Future[Outcome] | Future[Outcome], result: Result) -> None:
    outcome, error = result
    if error is not None:
        future.set_exception(error)
    else:
        assert outcome is not None
        future.set_result(outcome)
