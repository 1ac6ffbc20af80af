"""The message bus with fakes: idempotency, events in the outbox, error translation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.commands import (
    ApplyAtomically,
    ChangePatientIdentifier,
    IdentifierChange,
    MergePatientRecords,
    MessageOrigin,
    RecordMerge,
    SavePatientResource,
    UpsertPatientRecord,
)
from engine.errors import Conflict, InvalidMessage, NotFound, PreconditionFailed
from engine.handlers import MessageBus
from engine.rules import RoutingRules, parse_rules
from mpi.model import Demographics, DemographicsUpdate, Identifier, PersonName, RecordKey
from tests.fakes import FixedClock, InMemoryUnitOfWork, SequentialIds

RULES = """
facilities: [{code: NORTH, tier: 1}, {code: EAST, tier: 2}]
routes: [{action: upsert_patient}]
events: {mpi_changed_for: all_patients}
"""


def origin(control_id: str, sender: str = "APP^NORTH") -> MessageOrigin:
    return MessageOrigin(channel="hl7", sender=sender, control_id=control_id,
                         message_type="ADT^A08", facility="NORTH")


def upsert(control_id: str, mrn: str = "100", **values: object) -> UpsertPatientRecord:
    values.setdefault("identifiers", (Identifier(mrn, "NGH", "MR"),))
    return UpsertPatientRecord(
        origin=origin(control_id), key=RecordKey("NORTH", "NGH", mrn),
        update=DemographicsUpdate(Demographics(**values), frozenset(values)))  # type: ignore[arg-type]


def bus_for(rules: RoutingRules | None = None) -> MessageBus:
    return MessageBus(rules or parse_rules(RULES), FixedClock(step=timedelta(seconds=1)), SequentialIds())


def run(bus: MessageBus, uow: InMemoryUnitOfWork, *commands: object) -> list[object]:
    outcomes = [bus.handle(c, uow) for c in commands]  # type: ignore[arg-type]
    uow.commit()
    return outcomes


def test_an_applied_change_writes_one_mpi_changed_event_with_rising_sequence() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    run(bus, uow, upsert("1", names=(PersonName("DOE"),)), upsert("2", sex="female"))
    first, second = uow.outbox.committed
    numbers = uow.outbox.sequences  # type: ignore[attr-defined]
    assert (first.routing_key, numbers[first.event_id], numbers[second.event_id]) == ("mpi.changed", 1, 2)
    assert first.subject == second.subject
    assert first.correlation_id == "1"
    assert first.data["created"] is True and "names" in first.data["changes"]
    assert second.data["changes"] == {"sex": {"old": "", "new": "female"}}
    assert second.data["winner"] == {"facility": "NORTH", "tier": 1}
    assert second.data["source"]["control_id"] == "2"


def test_a_resent_control_id_is_acknowledged_without_applying_it_twice() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    run(bus, uow, upsert("1", sex="male"))
    [again] = run(bus, uow, upsert("1", sex="female"))
    assert again.status == "duplicate"  # type: ignore[attr-defined]
    assert len(uow.outbox.committed) == 1
    record = uow.mpi.get_record(RecordKey("NORTH", "NGH", "100"))
    assert record is not None and record.demographics.sex == "male"


def test_the_same_control_id_from_another_sender_is_another_message() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    run(bus, uow, upsert("1", sex="male"))
    other = upsert("1", mrn="200", sex="female")
    other = UpsertPatientRecord(origin=origin("1", sender="OTHER^NORTH"), key=other.key, update=other.update)
    [outcome] = run(bus, uow, other)
    assert outcome.status == "applied"  # type: ignore[attr-defined]


def test_no_event_when_nothing_changed_or_when_the_event_is_not_selected() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    run(bus, uow, upsert("1", sex="male"), upsert("2", sex="male"))
    assert len(uow.outbox.committed) == 1
    quiet = bus_for(parse_rules(RULES.replace("events: {", "events: {publish: [member.enrolled], ")))
    uow2 = InMemoryUnitOfWork()
    run(quiet, uow2, upsert("1", sex="male"))
    assert uow2.outbox.committed == []


def test_index_errors_become_engine_errors_with_locations() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    missing = ChangePatientIdentifier(origin=origin("9"), changes=(IdentifierChange(
        old=RecordKey("NORTH", "NGH", "NOPE"), new=RecordKey("NORTH", "NGH", "NEW"),
        update=DemographicsUpdate(Demographics(), frozenset())),))
    with pytest.raises(NotFound) as caught:
        bus.handle(missing, uow)
    assert caught.value.location == "MRG-1"
    run(bus, uow, upsert("1"), upsert("2", mrn="200"))
    taken = ChangePatientIdentifier(origin=origin("3"), changes=(IdentifierChange(
        old=RecordKey("NORTH", "NGH", "100"), new=RecordKey("NORTH", "NGH", "200"),
        update=DemographicsUpdate(Demographics(), frozenset())),))
    with pytest.raises(Conflict):
        bus.handle(taken, uow)
    same = MergePatientRecords(origin=origin("4"), merges=(RecordMerge(
        survivor=RecordKey("NORTH", "NGH", "1"), prior=RecordKey("NORTH", "NGH", "1"),
        update=DemographicsUpdate(Demographics(), frozenset())),))
    with pytest.raises(InvalidMessage):
        bus.handle(same, uow)


def test_one_event_per_patient_for_a_message_with_several_groups() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    run(bus, uow, upsert("1", names=(PersonName("KEEP"),)), upsert("2", mrn="201"), upsert("3", mrn="202"))
    empty = DemographicsUpdate(Demographics(), frozenset())
    merges = MergePatientRecords(origin=origin("4"), merges=tuple(
        RecordMerge(survivor=RecordKey("NORTH", "NGH", "100"), prior=RecordKey("NORTH", "NGH", m),
                    update=empty) for m in ("201", "202")))
    run(bus, uow, merges)
    events = [m for m in uow.outbox.committed if m.correlation_id == "4"]
    survivor_events = [e for e in events if e.data["merged_from"]]
    assert len(survivor_events) == 1 and len(survivor_events[0].data["merged_from"]) == 2
    assert len(events) == 3  # the survivor, and each retired patient


def resource(control_id: str, record_id: str | None, mrn: str, **extra: object) -> SavePatientResource:
    return SavePatientResource(origin=origin(control_id), record_id=record_id,
                               key=RecordKey("NORTH", "NGH", mrn),
                               demographics=Demographics(identifiers=(Identifier(mrn, "NGH", "MR"),)),
                               **extra)  # type: ignore[arg-type]


def test_conditional_create_returns_the_single_match_and_refuses_several() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    [made] = run(bus, uow, resource("1", None, "100"))
    ident = (Identifier("100", "NGH", "MR"),)
    [again] = run(bus, uow, resource("2", None, "300", if_none_exist=ident))
    assert again.resource.record_id == made.resource.record_id  # type: ignore[attr-defined]
    assert again.resource.created is False  # type: ignore[attr-defined]
    shared = Identifier("S", "SHARED", "PI")
    twice = [SavePatientResource(origin=origin(f"t{n}"), record_id=None, key=RecordKey("NORTH", "NGH", m),
                                 demographics=Demographics(identifiers=(Identifier(m, "NGH", "MR"), shared)))
             for n, m in enumerate(("400", "401"))]
    run(bus, uow, *twice)
    with pytest.raises(PreconditionFailed):
        bus.handle(resource("3", None, "500", if_none_exist=(shared,)), uow)


def test_an_atomic_group_reports_each_part() -> None:
    bus, uow = bus_for(), InMemoryUnitOfWork()
    group = ApplyAtomically(origin=origin("tx"), commands=(resource("tx#1", None, "1"),
                                                            resource("tx#2", None, "2")))
    [outcome] = run(bus, uow, group)
    assert [p.resource.created for p in outcome.parts] == [True, True]  # type: ignore[attr-defined]
    assert outcome.events == 2  # type: ignore[attr-defined]
