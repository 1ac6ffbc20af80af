"""The journal on the group committer: applied messages in their own commit, the rest after.

In-memory units of work record which entries each commit carried, so these tests see
exactly where every entry went.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.commands import ChangePatientIdentifier, Command, IdentifierChange, Outcome
from engine.committer import GroupCommitter
from engine.errors import EngineError, StoreUnavailable
from engine.handlers import MessageBus
from engine.journal import JournalEntry
from engine.journal_writer import JournalWriter
from engine.rules import RoutingRules
from engine.uow import UnitOfWork
from mpi.model import Demographics, DemographicsUpdate, RecordKey
from mpi.repository import InMemoryMpiRepository
from tests.fakes import (
    FixedClock,
    InMemoryInbox,
    InMemoryJournalTrail,
    InMemoryOutbox,
    InMemoryUnitOfWork,
    SequentialIds,
)
from tests.unit.test_handlers import origin, upsert

AT = datetime(2026, 1, 1, tzinfo=UTC)


def entry(control_id: str, outcome: str = "AA") -> JournalEntry:
    return JournalEntry(channel="mllp", sender="APP^GHH", control_id=control_id,
                        message_type="ADT^A08", received_at=AT, outcome=outcome)


class JournaledWork:
    """Work whose entry names its command's control id and the result it was given."""

    def __init__(self, command: Command | None, control_id: str, *, broken_entry: bool = False) -> None:
        self.command, self.control_id, self.broken_entry = command, control_id, broken_entry
        self.entries: list[tuple[str, str]] = []  # (when, outcome) for each entry built

    def prepare(self) -> Command | None:
        return self.command

    def complete(self, outcome: Outcome | None, error: EngineError | None) -> str:
        return "AA" if error is None else "AE"

    def journal_entry(self, outcome: Outcome | None, error: EngineError | None) -> JournalEntry:
        if self.broken_entry:
            raise RuntimeError("a bug while journaling")
        code = "AA" if error is None else "AE"
        self.entries.append(("applied" if outcome else "not applied", code))
        return entry(self.control_id, code)


class Store:
    """The shared in-memory state behind every unit of work, and a switch to fail commits."""

    def __init__(self) -> None:
        self.repo, self.inbox, self.outbox = InMemoryMpiRepository(), InMemoryInbox(), InMemoryOutbox()
        self.journal = InMemoryJournalTrail()
        self.fail_next_commits = 0

    def unit_of_work(self, _check: bool) -> UnitOfWork:
        store = self

        class Failing(InMemoryUnitOfWork):
            def commit(self) -> None:
                if store.fail_next_commits:
                    store.fail_next_commits -= 1
                    self.close()
                    raise StoreUnavailable("database unavailable (OperationalError)")
                super().commit()

        return Failing(self.repo, self.inbox, self.outbox, journal=self.journal)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def counted() -> list[JournalEntry]:
    return []


@pytest.fixture
def committer(rules: RoutingRules, store: Store, counted: list[JournalEntry]) -> Iterator[GroupCommitter]:
    journal = JournalWriter(enabled=True, observe=counted.append)
    running = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()), store.unit_of_work,
                             journal=journal, journal_delay=0.01)
    running.start()
    yield running
    running.stop()


def run_all(committer: GroupCommitter, *works: JournaledWork) -> list[object]:
    async def main() -> list[object]:
        return await asyncio.gather(*(committer.run(w) for w in works), return_exceptions=True)
    return asyncio.run(main())


def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def test_an_applied_message_is_journaled_in_the_commit_of_its_effects(
        committer: GroupCommitter, store: Store, counted: list[JournalEntry]) -> None:
    work = JournaledWork(upsert("c1", mrn="M1"), "c1")
    assert run_all(committer, work) == ["AA"]
    [commit] = store.journal.commits  # one commit carried the effects and the entry
    assert [e.control_id for e in commit] == ["c1"]
    assert set(store.inbox.committed) == {("APP^NORTH", "c1")}
    assert work.entries == [("applied", "AA")]  # built once, before commit, not deferred again
    assert [e.control_id for e in counted] == ["c1"]


def test_a_message_answered_without_a_commit_is_deferred_and_written_after_its_answer(
        committer: GroupCommitter, store: Store, counted: list[JournalEntry]) -> None:
    refused = JournaledWork(None, "r1")  # nothing to apply: refused before the database
    assert run_all(committer, refused) == ["AA"]  # answered at once
    wait_for(lambda: store.journal.committed)
    assert [[e.control_id for e in c] for c in store.journal.commits] == [["r1"]]
    assert refused.entries == [("not applied", "AA")]
    assert len(counted) == 1


def test_deferred_entries_ride_along_with_the_next_group(
        rules: RoutingRules, store: Store) -> None:
    journal = JournalWriter(enabled=True)
    committer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()), store.unit_of_work,
                               journal=journal, journal_delay=5.0)  # no flush alone in time
    committer.start()
    try:
        run_all(committer, JournaledWork(None, "r1"))
        assert journal.waiting == 1 and store.journal.commits == []
        run_all(committer, JournaledWork(upsert("c2", mrn="M2"), "c2"))
        assert [[e.control_id for e in c] for c in store.journal.commits] == [["c2", "r1"]]
    finally:
        committer.stop()


def test_a_failed_commit_keeps_no_entry_and_the_retry_journals_each_message_once(
        committer: GroupCommitter, store: Store) -> None:
    missing = ChangePatientIdentifier(origin=origin("bad"), changes=(IdentifierChange(
        old=RecordKey("NORTH", "NGH", "NOPE"), new=RecordKey("NORTH", "NGH", "X"),
        update=DemographicsUpdate(Demographics(), frozenset())),))
    works = [JournaledWork(upsert("ok1", mrn="A"), "ok1"), JournaledWork(missing, "bad"),
             JournaledWork(upsert("ok2", mrn="B"), "ok2")]
    answers = run_all(committer, *works)
    assert answers == ["AA", "AE", "AA"]
    wait_for(lambda: len(store.journal.committed) == 3)
    assert sorted(e.control_id for e in store.journal.committed) == ["bad", "ok1", "ok2"]
    assert {e.control_id: e.outcome for e in store.journal.committed}["bad"] == "AE"


def test_deferred_entries_wait_while_the_database_is_down_and_are_written_once_it_is_back(
        committer: GroupCommitter, store: Store) -> None:
    store.fail_next_commits = 2
    assert run_all(committer, JournaledWork(None, "r1")) == ["AA"]  # the answer never waits
    wait_for(lambda: store.journal.committed, seconds=10)
    assert [e.control_id for e in store.journal.committed] == ["r1"]
    assert store.fail_next_commits == 0


def test_a_bug_while_journaling_costs_the_entry_not_the_message(
        committer: GroupCommitter, store: Store) -> None:
    broken = JournaledWork(upsert("c3", mrn="M3"), "c3", broken_entry=True)
    assert run_all(committer, broken) == ["AA"]
    assert len(store.inbox.committed) == 1 and store.journal.committed == []


def test_entries_deferred_before_a_stop_are_written_by_it(rules: RoutingRules, store: Store) -> None:
    journal = JournalWriter(enabled=True)
    committer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()), store.unit_of_work,
                               journal=journal, journal_delay=60.0)
    committer.start()
    run_all(committer, JournaledWork(None, "r1"))
    journal.defer(entry("r2", "AR"))
    committer.stop()
    assert [e.control_id for e in store.journal.committed] == ["r1", "r2"]


def test_a_disabled_journal_counts_every_message_and_stores_none(
        rules: RoutingRules, store: Store) -> None:
    counted: list[JournalEntry] = []
    journal = JournalWriter(enabled=False, observe=counted.append)
    committer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()), store.unit_of_work,
                               journal=journal, journal_delay=0.01)
    committer.start()
    try:
        run_all(committer, JournaledWork(upsert("c4", mrn="M4"), "c4"), JournaledWork(None, "r4"))
        time.sleep(0.05)
    finally:
        committer.stop()
    assert sorted(e.control_id for e in counted) == ["c4", "r4"]
    assert store.journal.committed == [] and journal.waiting == 0
