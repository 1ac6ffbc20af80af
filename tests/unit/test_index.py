"""PatientIndex operations over the in-memory repository."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from mpi.errors import IdentifierInUse, InvalidIndexOperation, RecordExists, UnknownRecord, VersionConflict
from mpi.index import PatientIndex
from mpi.model import (
    Demographics,
    DemographicsUpdate,
    Identifier,
    PersonName,
    RecordKey,
    Telecom,
)
from mpi.repository import InMemoryMpiRepository
from tests.fakes import FixedClock

TIERS = {"NORTH": 1, "EAST": 2}


@pytest.fixture
def repo() -> InMemoryMpiRepository:
    return InMemoryMpiRepository()


@pytest.fixture
def index(repo: InMemoryMpiRepository) -> PatientIndex:
    ids = (f"id{n}" for n in itertools.count(1))
    clock = FixedClock(step=timedelta(seconds=1))
    return PatientIndex(repo, TIERS.__getitem__, lambda: next(ids), clock.now)


def update(*present: str, **values: object) -> DemographicsUpdate:
    return DemographicsUpdate(Demographics(**values), frozenset(present or values))  # type: ignore[arg-type]


def key(facility: str, mrn: str, authority: str = "NGH") -> RecordKey:
    return RecordKey(facility, authority, mrn)


NGH_100 = Identifier("100", "NGH", "MR")


def test_a_new_record_creates_a_patient_and_reports_every_field(index: PatientIndex) -> None:
    [change] = index.upsert(key("NORTH", "100"), update(names=(PersonName("DOE", ("JO",)),),
                                                        identifiers=(NGH_100,)))
    assert change.created
    assert set(change.changed) == {"identifiers", "names"}
    assert change.winner_facility == "NORTH" and change.winner_tier == 1


def test_records_sharing_an_identifier_are_one_patient_ranked_by_tier(
        index: PatientIndex, repo: InMemoryMpiRepository) -> None:
    index.upsert(key("EAST", "E1", "ECC"), update(
        identifiers=(Identifier("E1", "ECC", "MR"), NGH_100), names=(PersonName("EASTNAME"),),
        emails=(Telecom("email", "e@example.org"),)))
    [change] = index.upsert(key("NORTH", "100"), update(identifiers=(NGH_100,),
                                                        names=(PersonName("NORTHNAME"),)))
    assert not change.created
    assert change.changed["names"][1][0]["family"] == "NORTHNAME"
    [patient] = repo.patients.values()
    assert patient.best.names[0].family == "NORTHNAME"
    assert patient.best.emails[0].value == "e@example.org"
    assert patient.provenance == {"names": "NORTH", "emails": "EAST"}


def test_ssn_does_not_join_records_of_different_people(index: PatientIndex,
                                                       repo: InMemoryMpiRepository) -> None:
    ssn = Identifier("123456789", "", "SS")
    index.upsert(key("NORTH", "1"), update(identifiers=(Identifier("1", "NGH", "MR"), ssn)))
    index.upsert(key("EAST", "2", "ECC"), update(identifiers=(Identifier("2", "ECC", "MR"), ssn)))
    assert len(repo.patients) == 2


def test_absent_fields_are_kept_and_explicitly_empty_fields_are_cleared(
        index: PatientIndex, repo: InMemoryMpiRepository) -> None:
    index.upsert(key("NORTH", "100"), update(identifiers=(NGH_100,), names=(PersonName("DOE"),),
                                             sex="female"))
    [change] = index.upsert(key("NORTH", "100"), update("sex", "birth_date", birth_date="1990-01-02"))
    assert change.changed["sex"] == ("female", "")
    record = repo.get_record(key("NORTH", "100"))
    assert record is not None
    assert record.demographics.names[0].family == "DOE"
    assert record.demographics.birth_date == "1990-01-02"
    assert record.version == 2


def test_an_update_that_changes_nothing_changes_nothing(index: PatientIndex,
                                                        repo: InMemoryMpiRepository) -> None:
    index.upsert(key("NORTH", "100"), update(identifiers=(NGH_100,), sex="male"))
    record = repo.get_record(key("NORTH", "100"))
    assert record is not None
    stamp = record.updated_at
    assert index.upsert(key("NORTH", "100"), update(sex="male")) == []
    assert (record.version, record.updated_at) == (1, stamp)


def test_merge_retires_the_prior_record_and_its_patient(index: PatientIndex,
                                                        repo: InMemoryMpiRepository) -> None:
    index.upsert(key("NORTH", "100"), update(identifiers=(NGH_100,), names=(PersonName("KEEP"),)))
    index.upsert(key("NORTH", "999"), update(identifiers=(Identifier("999", "NGH", "MR"),),
                                             names=(PersonName("DUPLICATE"),)))
    survivor = repo.get_record(key("NORTH", "100"))
    prior = repo.get_record(key("NORTH", "999"))
    assert survivor and prior and survivor.patient_id != prior.patient_id
    old_patient = prior.patient_id
    changes = index.merge(key("NORTH", "100"), key("NORTH", "999"), update())
    assert prior.merged_into == survivor.id and prior.patient_id == survivor.patient_id
    assert repo.patients[old_patient].merged_into == survivor.patient_id
    assert {c.patient_id for c in changes} == {survivor.patient_id, old_patient}
    assert repo.patients[survivor.patient_id].best.names[0].family == "KEEP"


def test_merge_of_an_unknown_prior_remembers_it_for_the_survivor(index: PatientIndex,
                                                                 repo: InMemoryMpiRepository) -> None:
    index.merge(key("NORTH", "100"), key("NORTH", "555"), update(identifiers=(NGH_100,)))
    tombstone = repo.get_record(key("NORTH", "555"))
    survivor = repo.get_record(key("NORTH", "100"))
    assert tombstone and survivor and tombstone.merged_into == survivor.id
    assert tombstone.patient_id == survivor.patient_id and len(repo.patients) == 1


def test_merge_refuses_a_record_into_itself_before_changing_anything(
        index: PatientIndex, repo: InMemoryMpiRepository) -> None:
    with pytest.raises(InvalidIndexOperation):
        index.merge(key("NORTH", "1"), key("NORTH", "1"), update(names=(PersonName("X"),)))
    assert repo.records == {}


def test_change_identifier_moves_the_record_to_its_new_key(index: PatientIndex,
                                                           repo: InMemoryMpiRepository) -> None:
    index.upsert(key("NORTH", "OLD"), update(identifiers=(Identifier("OLD", "NGH", "MR"),)))
    index.change_identifier(key("NORTH", "OLD"), key("NORTH", "NEW"), update())
    assert repo.get_record(key("NORTH", "OLD")) is None
    record = repo.get_record(key("NORTH", "NEW"))
    assert record is not None
    assert [i.value for i in record.demographics.identifiers] == ["NEW"]


def test_change_identifier_refuses_unknown_and_taken_identifiers(index: PatientIndex) -> None:
    with pytest.raises(UnknownRecord):
        index.change_identifier(key("NORTH", "NOPE"), key("NORTH", "NEW"), update())
    index.upsert(key("NORTH", "A"), update())
    index.upsert(key("NORTH", "B"), update())
    with pytest.raises(IdentifierInUse):
        index.change_identifier(key("NORTH", "A"), key("NORTH", "B"), update())


def test_put_creates_replays_and_guards_versions(index: PatientIndex) -> None:
    data = Demographics(identifiers=(NGH_100,), names=(PersonName("DOE"),))
    created = index.put(None, key("NORTH", "100"), data)
    assert created.created and created.record.version == 1
    resend = index.put(None, key("NORTH", "100"), data)
    assert (resend.created, resend.changed, resend.record.id) == (False, False, created.record.id)
    with pytest.raises(RecordExists):
        index.put(None, key("NORTH", "100"), Demographics(identifiers=(NGH_100,), sex="male"))
    with pytest.raises(VersionConflict):
        index.put(created.record.id, key("NORTH", "100"), data, expected_version=7)
    updated = index.put(created.record.id, key("NORTH", "100"),
                        Demographics(identifiers=(NGH_100,), sex="male"), expected_version=1)
    assert updated.changed and updated.record.version == 2 and updated.changes


def test_put_under_a_client_id_creates_and_refuses_a_key_held_elsewhere(index: PatientIndex) -> None:
    made = index.put("client-chosen-id", key("NORTH", "7"), Demographics())
    assert made.created and made.record.id == "client-chosen-id"
    with pytest.raises(IdentifierInUse):
        index.put("another-id", key("NORTH", "7"), Demographics())


def test_merge_records_by_id(index: PatientIndex, repo: InMemoryMpiRepository) -> None:
    a = index.put(None, key("NORTH", "1"), Demographics()).record
    b = index.put(None, key("NORTH", "2"), Demographics()).record
    index.merge_records(a.id, b.id)
    assert a.merged_into == b.id
    assert index.merge_records(a.id, b.id) == []
    with pytest.raises(UnknownRecord):
        index.merge_records("missing", b.id)
    with pytest.raises(InvalidIndexOperation):
        index.merge_records(b.id, a.id)
