"""The jobs of the group committer: the work adapters hand it, and how answers go back.

Split from ``engine.committer`` so that module keeps to the writer's loop and its commits.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from engine.commands import Command, Outcome
from engine.errors import EngineError
from engine.journal import JournalEntry

__all__ = ["STOP", "WAKE", "Answer", "Job", "Result", "Stop", "Wake", "Work", "complete",
           "journal_entry_of", "settle", "settle_all"]

log = logging.getLogger("engine.committer")

Result = tuple[Outcome | None, EngineError | None]
T_co = TypeVar("T_co", covariant=True)


class Work(Protocol[T_co]):
    """Work an adapter wants done on the writer thread around its command.

    Reading and translating a message, and writing its answer, are done here rather than on
    the event loop: with one interpreter lock, work split between two threads waits for
    the lock at every hand-over, while on the writer it runs between database round trips.
    """

    def prepare(self) -> Command | None:
        """The command to apply, or None when there is nothing to apply (already answered)."""

    def complete(self, outcome: Outcome | None, error: EngineError | None) -> T_co:
        """The adapter's answer, once the command committed (or failed, or was not applied)."""

    def journal_entry(self, outcome: Outcome | None,
                      error: EngineError | None) -> JournalEntry | None:
        """The message's journal entry for this result; None when the adapter journals it.

        Called inside the unit of work, before commit, for an applied command (the answer
        it describes must then be the one ``complete`` gives for the same outcome), and
        after ``complete`` for everything else.
        """


@dataclass(slots=True)
class Job:
    """A command (or a piece of work) waiting for the writer, and where its answer goes."""

    command: Command | None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | Future[Any] | None = None
    work: Work[Any] | None = None
    error: EngineError | None = None  # a failure while preparing
    journaled: bool = False  # its entry was committed with its effects
    ready: bool = False  # prepared and checked (perhaps while an earlier group committed)


class Stop:
    """Put on the queue to stop one writer thread."""


class Wake:
    """Put on the queue when an entry is deferred: a waiting writer then times its flush."""


STOP = Stop()
WAKE = Wake()

Answer = tuple[Any, BaseException | None]


def complete(job: Job, result: Result) -> Answer:
    """What the job's caller receives: the work's answer, or the outcome (or the error)."""
    outcome, error = result
    if job.work is None:
        return outcome, error
    try:
        return job.work.complete(outcome, error), None
    except Exception as exc:  # handed to the waiting caller (logged below)
        log.exception("completing a message failed")
        return None, exc


def journal_entry_of(job: Job, outcome: Outcome | None, error: EngineError | None) -> JournalEntry | None:
    """The work's journal entry; a bug there costs the entry, never the message."""
    if job.work is None:
        return None
    try:
        return job.work.journal_entry(outcome, error)
    except Exception:
        log.exception("journal: building an entry failed; the message is answered without one")
        return None


def settle_all(items: list[tuple[Job, Answer]]) -> None:
    for job, answer in items:
        if job.future is not None and not job.future.done():
            settle(job.future, answer)


def settle(future: asyncio.Future[Any] | Future[Any], answer: Answer) -> None:
    value, error = answer
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
