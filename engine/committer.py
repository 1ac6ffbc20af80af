"""Group commit: many messages, one transaction, and still one answer per message after commit.

One PostgreSQL commit per message caps near 1,200 messages/s on this kind of machine while
100 messages per commit pass 13,000/s. The listeners therefore hand their commands to one
writer thread, which takes whatever has queued up while the previous commit ran (no waiting
for a batch to fill, so a lone message is not delayed), applies the lot in one unit of work,
commits, and only then answers each message. If any command of a group fails, the group is
rolled back and its commands are applied one by one, so one bad message never costs the
others more than a retry.

The message journal rides on the same commits (``engine.journal``): an applied message's
entry is written in its group's transaction, and entries deferred by the adapters (refusals,
failures, FHIR answers) join the next group, or are written alone when no group follows
within ``journal_delay`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

from engine.commands import Command, Outcome
from engine.committer_jobs import (
    STOP,
    WAKE,
    Answer,
    Job,
    Result,
    Stop,
    Wake,
    Work,
    complete,
    journal_entry_of,
    settle,
    settle_all,
)
from engine.errors import EngineError, RejectedMessage, StoreUnavailable, TransientFailure
from engine.handlers import MessageBus
from engine.journal import JournalEntry
from engine.journal_writer import JournalWriter
from engine.limits import check_command
from engine.uow import UnitOfWork
from engine.watchdog import Busy, WriterWatchdog

__all__ = ["CommitStats", "GroupCommitter", "Work"]

log = logging.getLogger(__name__)

ErrorClassifier = Callable[[Exception], EngineError]
OnCommit = Callable[[int, float], None]  # group size, seconds spent applying and committing
T = TypeVar("T")


@dataclass(slots=True)
class CommitStats:
    """Counters for /metrics."""

    commits: int = 0
    messages: int = 0
    failures: int = 0
    largest_batch: int = 0
    busy_seconds: float = 0.0  # time spent applying and committing groups


_JOURNAL_RETRY = 1.0  # seconds before a failed write of deferred entries is tried again


def classify_engine_error(exc: Exception) -> EngineError:
    """Default classification: our errors as they are, anything else an internal failure."""
    if isinstance(exc, EngineError):
        return exc
    return TransientFailure(f"internal error ({type(exc).__name__})")


class GroupCommitter:
    """Applies commands in group commits on a single writer thread."""

    def __init__(self, bus: MessageBus, unit_of_work: Callable[[bool], UnitOfWork], *,
                 classify: ErrorClassifier = classify_engine_error, max_batch: int = 256,
                 writers: int = 1, stall_seconds: float = 30.0,
                 journal: JournalWriter | None = None, journal_delay: float = 0.05,
                 on_commit: OnCommit | None = None) -> None:
        self._bus = bus
        self._unit_of_work = unit_of_work
        self._classify = classify
        self._max_batch = max_batch
        self._writers = writers
        self._queue: queue.SimpleQueue[Job | Stop | Wake] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stats_lock = threading.Lock()
        self.stats = CommitStats()
        #: Writer name -> the group it is applying; a dict operation is atomic under the GIL.
        self._busy: dict[str, Busy] = {}
        self.watchdog = WriterWatchdog(lambda: dict(self._busy), stall_seconds)
        self._journal = journal
        self._journal_delay = journal_delay
        self._journal_retry_at = 0.0
        self._on_commit = on_commit
        self._local = threading.local()  # each writer's read-ahead (see _read_ahead)
        if journal is not None:
            journal.wake_with(lambda: self._queue.put(WAKE))

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer threads. Several writers overlap one's database waits with the
        others' work; the store must keep concurrent groups apart (see mpi.locks)."""
        self._threads = [threading.Thread(target=self._run, name=f"group-committer-{n}", daemon=True)
                         for n in range(self._writers)]
        for thread in self._threads:
            thread.start()
        self.watchdog.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop; gives up on writers still busy after ``timeout``
        seconds in all (they are daemon threads: a stuck one cannot hold the process)."""
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            self._queue.put(STOP)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.name in self._busy]
        if stuck:
            log.warning("stopping without waiting any longer for %s (busy with a group)",
                        ", ".join(stuck))
        self._threads = []
        self.watchdog.stop()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # -- submitting -----------------------------------------------------------------------

    async def run(self, work: Work[T]) -> T:
        """Prepare, apply and complete ``work`` on the writer thread; its answer after commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(Job(None, loop, future, work))
        return await future

    async def apply(self, command: Command) -> Outcome:
        """Apply ``command``; returns after its transaction committed, raises ``EngineError``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(Job(command, loop, future))
        return await future

    def apply_blocking(self, command: Command, timeout: float | None = 30.0) -> Outcome:
        """``apply`` for threads that are not running an event loop."""
        return self.submit(command).result(timeout)

    def submit(self, command: Command) -> Future[Outcome]:
        """Queue ``command`` without waiting: its future resolves after commit (or raises).
        A consumer submits a whole batch, so the batch can share group commits."""
        future: Future[Outcome] = Future()
        self._queue.put(Job(command, None, future))
        return future

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        ahead: list[Job] = []
        while ahead or not stopping:
            if ahead:
                batch, ahead = ahead, []
            else:
                first = self._next()
                if isinstance(first, Stop):
                    break
                batch = [first]
            if not stopping:
                stopping = self._take_queued(batch)
            name = threading.current_thread().name
            self._busy[name] = Busy(time.monotonic(), len(batch))
            read_ahead = _ReadAhead(stopping)
            self._local.read_ahead = read_ahead
            try:
                self._deliver(batch, self._results(batch))
            finally:
                del self._busy[name]
                self._local.read_ahead = None
            ahead, stopping = read_ahead.jobs, read_ahead.stopping
        self._flush_journal()  # what was deferred before the stop

    def _take_queued(self, batch: list[Job]) -> bool:
        """Add what is queued to ``batch``, up to the group's size; True if a stop came."""
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if isinstance(job, Stop):
                return True
            if isinstance(job, Job):
                batch.append(job)
        return False

    def _read_ahead(self) -> None:
        """While a group's commit is on its way (sent, not answered yet): take the jobs that
        queued up meanwhile and prepare them, so that reading and translating the next group
        overlaps the database's work on this one instead of following it. They form the
        next group. Called at most once per group (a group retried one by one commits
        again), and only on the writer thread."""
        read_ahead: _ReadAhead | None = getattr(self._local, "read_ahead", None)
        if read_ahead is None or read_ahead.done:
            return
        read_ahead.done = True
        if read_ahead.stopping:
            return
        read_ahead.stopping = self._take_queued(read_ahead.jobs)
        for job in read_ahead.jobs:
            self._ready(job)

    def _next(self) -> Job | Stop:
        """The next job; while deferred journal entries wait, write them when none comes."""
        while True:
            waiting = self._journal is not None and self._journal.waiting > 0
            timeout = max(self._journal_delay, self._journal_retry_at - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout) if waiting else self._queue.get()
            except queue.Empty:
                self._flush_journal()
                continue
            if not isinstance(item, Wake):
                return item

    def _flush_journal(self) -> None:
        """Deferred entries in a commit of their own; kept for later if it fails."""
        journal = self._journal
        entries = journal.take() if journal is not None else []
        if journal is None or not entries:
            return
        try:
            with self._unit_of_work(False) as uow:
                uow.journal.add(entries)
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - the entries wait; messages go on
            journal.give_back(entries)
            self._journal_retry_at = time.monotonic() + _JOURNAL_RETRY
            log.warning("journal: %d deferred entries not written yet: %s", len(entries),
                        self._classify(exc).reason)

    def _results(self, batch: list[Job]) -> list[Result]:
        for job in batch:
            self._ready(job)
        ready = [job for job in batch if job.command is not None and job.error is None]
        applied = dict(zip((id(job) for job in ready), self._process(ready), strict=True)) if ready else {}
        return [applied.get(id(job), (None, job.error)) for job in batch]

    def _ready(self, job: Job) -> None:
        """Prepare the job's work and check its command's values, once."""
        if job.ready:
            return
        job.ready = True
        if job.work is not None:
            self._prepare(job)
        if job.command is not None and job.error is None:
            job.error = _storable(job.command)

    def _prepare(self, job: Job) -> None:
        assert job.work is not None
        try:
            job.command = job.work.prepare()
        except Exception as exc:  # a bug in an adapter must not stop the writer (logged below)
            log.exception("preparing a message failed")
            job.error = self._classify(exc)

    def _process(self, batch: list[Job]) -> list[Result]:
        try:
            # Optimistic: the inbox is not read first; a resent message shows up as a key
            # conflict at commit, and then the group goes the careful way below.
            outcomes = self._apply_group(batch, check_inbox=False)
        except Exception:  # noqa: BLE001 - retried below; no message is ever dropped
            # A resend, one bad command or a concurrent writer spoiled the group: one by one,
            # each checked against the inbox first. A refusal too: the command may be a resend
            # of one applied before (which now answers as a duplicate, not as refused).
            return [self._process_one(job) for job in batch]
        return [(outcome, None) for outcome in outcomes]

    def _process_one(self, job: Job) -> Result:
        assert job.command is not None
        for attempt in (1, 2):
            try:
                return self._apply_group([job], check_inbox=True)[0], None
            except Exception as exc:  # noqa: BLE001 - classified by _failure
                error = self._failure(job, exc)
                if not (isinstance(error, StoreUnavailable) and error.retry_at_once) or attempt == 2:
                    return None, error
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_group(self, jobs: list[Job], *, check_inbox: bool) -> list[Outcome]:
        started = time.perf_counter()
        commands = [job.command for job in jobs if job.command is not None]
        # Deferred entries ride along on the optimistic path only: the careful one-by-one
        # path must not fail a message for a neighbour's entry.
        deferred = self._journal.take() if self._journal is not None and not check_inbox else []
        try:
            with self._unit_of_work(check_inbox) as uow:
                self._bus.prefetch(commands, uow)
                outcomes = [self._bus.handle(command, uow) for command in commands]
                entries = self._entries(jobs, outcomes)
                if self._journal is not None and self._journal.enabled and (entries or deferred):
                    uow.journal.add([entry for _job, entry in entries] + deferred)
                uow.commit_overlapping(self._read_ahead)
        except BaseException:
            if deferred and self._journal is not None:
                self._journal.give_back(deferred)
            raise
        self._committed(entries, time.perf_counter() - started, len(commands))
        return outcomes

    def _entries(self, jobs: list[Job], outcomes: list[Outcome]) -> list[tuple[Job, JournalEntry]]:
        """The journal entries of applied messages, to commit with their effects."""
        if self._journal is None:
            return []
        entries: list[tuple[Job, JournalEntry]] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            entry = journal_entry_of(job, outcome, None)
            if entry is not None:
                entries.append((job, entry))
        return entries

    def _committed(self, entries: list[tuple[Job, JournalEntry]], seconds: float, size: int) -> None:
        for job, _entry in entries:
            job.journaled = True
        if self._journal is not None:
            self._journal.committed(entry for _job, entry in entries)
        self._count(size, seconds)
        if self._on_commit is not None:
            self._on_commit(size, seconds)

    def _failure(self, job: Job, exc: Exception) -> EngineError:
        error = self._classify(exc)
        if isinstance(error, TransientFailure) and job.command is not None:
            with self._stats_lock:
                self.stats.failures += 1
            origin = job.command.origin
            log.warning("could not apply %s %s from %s: %s", origin.message_type,
                        origin.control_id, origin.sender, error.reason,
                        exc_info=not isinstance(exc, EngineError))
        return error

    def _count(self, size: int, seconds: float) -> None:
        with self._stats_lock:
            stats = self.stats
            stats.commits += 1
            stats.messages += size
            stats.largest_batch = max(stats.largest_batch, size)
            stats.busy_seconds += seconds

    def _deliver(self, batch: list[Job], results: list[Result]) -> None:
        """Answer every job; asyncio futures of one loop are resolved with one wake-up."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, Answer]]] = defaultdict(list)
        for job, result in zip(batch, results, strict=True):
            answer = complete(job, result)
            if self._journal is not None and not job.journaled:
                entry = journal_entry_of(job, *result)
                if entry is not None:
                    self._journal.defer(entry)
            if job.loop is not None:
                by_loop[job.loop].append((job, answer))
            elif isinstance(job.future, Future):
                settle(job.future, answer)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(settle_all, items)
            except RuntimeError:
                log.warning("event loop closed before %d answers could be delivered", len(items))


@dataclass(slots=True)
class _ReadAhead:
    """The jobs one writer took and prepared while its group committed."""

    stopping: bool  # a stop was taken off the queue: take nothing more
    jobs: list[Job] = field(default_factory=list)
    done: bool = False


def _storable(command: Command) -> RejectedMessage | None:
    """The refusal of a command holding a value the store cannot hold, before any SQL runs:
    such a command is answered alone and never spoils its group."""
    try:
        check_command(command)
    except RejectedMessage as exc:
        return exc
    return None
