"""The group committer with in-memory units of work: groups, failures, work on the writer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from engine.commands import ChangePatientIdentifier, Command, IdentifierChange, Outcome
from engine.committer import GroupCommitter
from engine.errors import EngineError, NotFound
from engine.handlers import MessageBus
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.hl7.receiver import Hl7Receiver
from mpi.model import Demographics, DemographicsUpdate, RecordKey
from mpi.repository import InMemoryMpiRepository
from tests.fakes import FixedClock, InMemoryInbox, InMemoryOutbox, InMemoryUnitOfWork, SequentialIds
from tests.unit.hl7.test_receiver import A08, BrokenRouter
from tests.unit.test_handlers import origin, upsert


@pytest.fixture
def committer(rules: RoutingRules) -> Iterator[GroupCommitter]:
    repo, inbox, outbox = InMemoryMpiRepository(), InMemoryInbox(), InMemoryOutbox()
    bus = MessageBus(rules, FixedClock(), SequentialIds())
    running = GroupCommitter(bus, lambda _check: InMemoryUnitOfWork(repo, inbox, outbox))
    running.start()
    yield running
    running.stop()


class Work:
    """Work that records what the writer thread did with it."""

    def __init__(self, command: Command | None, fail: bool = False) -> None:
        self.command, self.fail = command, fail

    def prepare(self) -> Command | None:
        if self.fail:
            raise RuntimeError("bug while preparing")
        return self.command

    def complete(self, outcome: Outcome | None, error: EngineError | None) -> str:
        return f"{outcome.status if outcome else '-'}/{type(error).__name__ if error else '-'}"


def test_commands_from_many_callers_are_applied_and_answered(committer: GroupCommitter) -> None:
    async def main() -> list[Outcome]:
        return await asyncio.gather(*(committer.apply(upsert(f"c{n}", mrn=f"M{n}")) for n in range(50)))

    outcomes = asyncio.run(main())
    assert {o.status for o in outcomes} == {"applied"}
    assert committer.stats.messages == 50 and committer.stats.commits <= 50


def test_a_failing_command_fails_alone(committer: GroupCommitter) -> None:
    missing = ChangePatientIdentifier(origin=origin("bad"), changes=(IdentifierChange(
        old=RecordKey("NORTH", "NGH", "NOPE"), new=RecordKey("NORTH", "NGH", "X"),
        update=DemographicsUpdate(Demographics(), frozenset())),))

    async def main() -> list[object]:
        return await asyncio.gather(committer.apply(upsert("ok1", mrn="A")), committer.apply(missing),
                                    committer.apply(upsert("ok2", mrn="B")), return_exceptions=True)

    first, bad, second = asyncio.run(main())
    assert isinstance(bad, NotFound)
    assert isinstance(first, Outcome) and isinstance(second, Outcome)


def test_work_is_prepared_applied_and_completed_on_the_writer(committer: GroupCommitter) -> None:
    async def main() -> list[str]:
        return await asyncio.gather(committer.run(Work(upsert("w1", mrn="W1"))), committer.run(Work(None)),
                                    committer.run(Work(None, fail=True)))

    applied, nothing, crashed = asyncio.run(main())
    assert applied == "applied/-"
    assert nothing == "-/-"
    assert crashed == "-/TransientFailure"


def test_hl7_through_the_writer_thread(rules: RoutingRules, committer: GroupCommitter) -> None:
    def receiver(router: Router) -> Hl7Receiver:
        return Hl7Receiver(router, committer.apply, FixedClock(), rules.hl7, run_on_writer=committer.run)

    ok = asyncio.run(receiver(Router(rules)).handle_frame(A08))[0].decode()
    broken = asyncio.run(receiver(BrokenRouter(rules)).handle_frame(A08))[0].decode()
    assert "MSA|AA|C-1" in ok
    assert "MSA|AE|C-1|internal error" in broken


def test_strict_routes_are_validated_off_the_writer_in_the_production_path() -> None:
    from engine.rules import parse_rules
    from inbound.hl7.strict import validate_structure
    from tests.unit.hl7.hl7_corpus import corpus_bytes
    from tests.unit.hl7.test_receiver import STRICT_RULES

    rules = parse_rules(STRICT_RULES)
    bus = MessageBus(rules, FixedClock(), SequentialIds())
    writer = GroupCommitter(bus, lambda _check: InMemoryUnitOfWork())
    writer.start()
    try:
        receiver = Hl7Receiver(Router(rules), writer.apply, FixedClock(), rules.hl7,
                               validate=validate_structure, run_on_writer=writer.run)
        valid = corpus_bytes("hl7apy/adt_a01_v25_full.hl7")
        broken = b"\r".join(s for s in valid.split(b"\r") if not s.startswith(b"PV1"))
        ok = [r.decode() for r in asyncio.run(receiver.handle_frame(valid))]
        refused = [r.decode() for r in asyncio.run(receiver.handle_frame(broken))]
    finally:
        writer.stop()
    assert "MSA|AA|" in ok[-1]
    assert "MSA|AR|" in refused[-1] and "structure validation failed" in refused[-1]
    assert writer.stats.messages == 1


class LoggedUnitOfWork(InMemoryUnitOfWork):
    """Logs when its commit is sent and when it is answered, with ``meanwhile`` between,
    as the SQL store runs it."""

    def __init__(self, log: list[str], *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._log = log

    def commit_overlapping(self, meanwhile: Callable[[], None]) -> None:
        self._log.append("commit sent")
        meanwhile()
        self.commit()
        self._log.append("commit answered")


class LoggedWork(Work):
    def __init__(self, log: list[str], name: str, gate: threading.Event | None = None) -> None:
        super().__init__(upsert(name, mrn=name.upper()))
        self.log, self.name, self.gate = log, name, gate

    def prepare(self) -> Command | None:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.log.append(f"prepare {self.name}")
        return super().prepare()

    def complete(self, outcome: Outcome | None, error: EngineError | None) -> str:
        self.log.append(f"answer {self.name}")
        return super().complete(outcome, error)


def test_the_next_group_is_prepared_while_a_commit_is_in_flight_and_answered_after_its_own(
        rules: RoutingRules) -> None:
    log: list[str] = []
    repo, inbox, outbox = InMemoryMpiRepository(), InMemoryInbox(), InMemoryOutbox()
    bus = MessageBus(rules, FixedClock(), SequentialIds())
    committer = GroupCommitter(bus, lambda _check: LoggedUnitOfWork(log, repo, inbox, outbox))
    committer.start()
    gate = threading.Event()

    async def main() -> list[str]:
        first = asyncio.ensure_future(committer.run(LoggedWork(log, "a", gate)))
        await asyncio.sleep(0.05)  # the writer holds "a" alone, waiting at the gate
        rest = [asyncio.ensure_future(committer.run(LoggedWork(log, name))) for name in "bc"]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest)

    try:
        answers = asyncio.run(main())
    finally:
        committer.stop()
    assert answers == ["applied/-"] * 3
    assert log == ["prepare a", "commit sent", "prepare b", "prepare c", "commit answered", "answer a",
                   "commit sent", "commit answered", "answer b", "answer c"]
    assert committer.stats.commits == 2


def test_jobs_read_ahead_with_a_stop_behind_them_are_applied_before_the_writer_stops(
        rules: RoutingRules) -> None:
    log: list[str] = []
    gate = threading.Event()
    repo, inbox, outbox = InMemoryMpiRepository(), InMemoryInbox(), InMemoryOutbox()

    class Gated(LoggedUnitOfWork):
        def commit_overlapping(self, meanwhile: Callable[[], None]) -> None:
            assert gate.wait(10)  # the first commit is in flight until the rest has queued
            super().commit_overlapping(meanwhile)

    bus = MessageBus(rules, FixedClock(), SequentialIds())
    committer = GroupCommitter(bus, lambda _check: Gated(log, repo, inbox, outbox))
    committer.start()
    first = committer.submit(upsert("a", mrn="A"))
    time.sleep(0.05)
    rest = [committer.submit(upsert(name, mrn=name.upper())) for name in "bc"]
    stopping = threading.Thread(target=committer.stop)
    stopping.start()  # its stop queues up behind b and c
    time.sleep(0.05)
    gate.set()
    stopping.join(10)
    assert not stopping.is_alive()
    assert [f.result(1).status for f in (first, *rest)] == ["applied"] * 3
    assert committer.stats.commits == 2 and not committer.alive
