"""Writers (threads or processes) at once: no person split into two patients, no update
lost, no sequence number repeated or skipped."""

from __future__ import annotations

import itertools
import threading
import time

import psycopg
import pytest
from sqlalchemy import Engine, func, select

import mpi.sql as mpi_sql
from engine.commands import MergePatientRecords, MessageOrigin, RecordMerge, UpsertPatientRecord
from engine.committer import GroupCommitter
from engine.domain.clock import RandomIds, SystemClock
from engine.errors import TransientFailure
from engine.handlers import MessageBus
from engine.rules import parse_rules
from engine.store.errors import classify_store_error
from engine.store.sql_uow import SqlUnitOfWork
from engine.store.tables import outbox
from mpi.index import PatientIndex
from mpi.model import Demographics, DemographicsUpdate, Identifier, Patient, PersonName, RecordKey, Telecom
from mpi.rows import patient_from_row
from mpi.tables import patients
from tests.fakes import FixedClock
from tests.integration.consistency import index_problems, sequence_problems
from tests.integration.relay_support import mpi_changed

SHARED = Identifier("E-77", "ENTERPRISE", "PI")


def upsert(database: Engine, key: RecordKey, ids: itertools.count[int], *,
           hold: float = 0.0, prefetched: threading.Event | None = None) -> None:
    own = Identifier(key.mrn, key.authority, "MR")
    with SqlUnitOfWork(database) as uow:
        uow.mpi.prefetch([key], [own, SHARED])
        if prefetched is not None:
            prefetched.set()
        index = PatientIndex(uow.mpi, lambda facility: 1, lambda: f"w{next(ids)}", FixedClock().now)
        index.upsert(key, DemographicsUpdate(Demographics(identifiers=(own, SHARED)),
                                             frozenset({"identifiers"})))
        time.sleep(hold)  # the other writer is trying to read meanwhile
        uow.commit()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_second_writer_waits_for_the_first_and_links_to_its_patient(database: Engine) -> None:
    ids = itertools.count(1)
    first_read = threading.Event()
    first = threading.Thread(target=upsert, args=(database, RecordKey("NORTH", "NGH", "1"), ids),
                             kwargs={"hold": 0.5, "prefetched": first_read})
    first.start()
    assert first_read.wait(10)
    started = time.monotonic()
    upsert(database, RecordKey("EAST", "ECC", "2"), ids)  # shares SHARED with the first
    waited = time.monotonic() - started
    first.join(10)
    with database.connect() as conn:
        assert conn.execute(select(func.count()).select_from(patients)).scalar_one() == 1
    assert waited > 0.3, "the second writer should have waited for the first's commit"


# -- lost updates and sequence numbers -------------------------------------------------------

RULES = """
facilities: [{code: NORTH, tier: 1}, {code: EAST, tier: 2}, {code: WEST, tier: 3}]
routes: [{action: upsert_patient}]
events: {mpi_changed_for: all_patients}
"""
AUTHORITY = {"NORTH": "NGH", "EAST": "ECC", "WEST": "WMC"}
TIERS = {"NORTH": 1, "EAST": 2, "WEST": 3}


def tier_of(facility: str) -> int:
    return TIERS[facility]


def command(facility: str, patient: int, control_id: str, *, link: bool = False,
            **values: object) -> UpsertPatientRecord:
    """A message from ``facility`` about its record of ``patient``, carrying only that
    facility's MRN (and, with ``link``, the enterprise identifier that joins the records)."""
    own = Identifier(f"{facility[0]}{patient}", AUTHORITY[facility], "MR")
    idents = (own, Identifier(f"E-{patient}", "ENTERPRISE", "PI")) if link else (own,)
    present = {"identifiers", *values}
    origin = MessageOrigin(channel="hl7", sender=f"EMR^{facility}", control_id=control_id,
                           message_type="ADT^A08", facility=facility)
    return UpsertPatientRecord(
        origin=origin, key=RecordKey(facility, AUTHORITY[facility], own.value),
        update=DemographicsUpdate(Demographics(identifiers=idents, **values),  # type: ignore[arg-type]
                                  frozenset(present)))


def apply(database: Engine, bus: MessageBus, cmd: UpsertPatientRecord, *, hold: float = 0.0,
          prefetched: threading.Event | None = None) -> None:
    with SqlUnitOfWork(database) as uow:
        bus.prefetch([cmd], uow)
        if prefetched is not None:
            prefetched.set()
        bus.handle(cmd, uow)
        time.sleep(hold)  # the other writer tries to read meanwhile
        uow.commit()


def new_bus() -> MessageBus:
    return MessageBus(parse_rules(RULES), SystemClock(), RandomIds())


def seed(database: Engine, bus: MessageBus, patients_count: int) -> None:
    for patient in range(patients_count):
        for facility in AUTHORITY:
            apply(database, bus, command(facility, patient, f"seed-{facility}-{patient}", link=True))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_writers_updating_one_patient_through_two_records_lose_nothing(database: Engine) -> None:
    bus = new_bus()
    seed(database, bus, 1)
    first_read = threading.Event()
    north = threading.Thread(target=apply, args=(
        database, bus, command("NORTH", 0, "n-1", names=(PersonName("DOE"),))),
        kwargs={"hold": 0.5, "prefetched": first_read})
    north.start()
    assert first_read.wait(10)
    started = time.monotonic()
    apply(database, bus, command("EAST", 0, "e-1", birth_date="1980-01-02"))
    waited = time.monotonic() - started
    north.join(10)
    [patient] = stored_patients(database)
    assert patient.best.names == (PersonName("DOE"),) and patient.best.birth_date == "1980-01-02"
    assert waited > 0.3, "the second writer should have waited for the first's commit"
    assert index_problems(database, tier_of) == [] and sequence_problems(database) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_four_writer_threads_on_shared_patients_give_the_state_of_one_writer(
        database: Engine) -> None:
    """Four streams of messages (NORTH for even and for odd patients, EAST, WEST), each in
    order, run at once through the group committer's four writer threads. Every stream
    owns one field of the patients it touches, so each patient's best demographics must
    end with every stream's last value, and every message must have made one event."""
    patients_count, rounds = 6, 30
    bus = new_bus()
    seed(database, bus, patients_count)
    committer = GroupCommitter(bus, lambda check: SqlUnitOfWork(database, check_inbox=check),
                               classify=classify_store_error, writers=4)
    streams = {
        "north-even": ("NORTH", range(0, patients_count, 2)),
        "north-odd": ("NORTH", range(1, patients_count, 2)),
        "east": ("EAST", range(patients_count)),
        "west": ("WEST", range(patients_count)),
    }

    def values(facility: str, round_number: int, patient: int) -> dict[str, object]:
        if facility == "NORTH":
            return {"names": (PersonName(f"N{round_number}X{patient}"),)}
        if facility == "EAST":
            return {"birth_date": f"19{round_number + 10:02d}-01-{patient + 1:02d}"}
        return {"phones": (Telecom("phone", f"555-{round_number:03d}-{patient:04d}"),)}

    def run(name: str) -> None:
        facility, patient_numbers = streams[name]
        for round_number in range(rounds):
            for patient in patient_numbers:
                cmd = command(facility, patient, f"{name}-{round_number}-{patient}",
                              **values(facility, round_number, patient))
                for _attempt in range(5):  # as a sender resends after an AE
                    try:
                        committer.apply_blocking(cmd)
                        break
                    except TransientFailure:
                        continue
                else:
                    raise AssertionError(f"{cmd.origin.control_id} never committed")

    committer.start()
    try:
        threads = [threading.Thread(target=run, args=(name,)) for name in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        committer.stop()
    last = rounds - 1
    for patient in stored_patients(database):
        number = int(patient.best.identifiers[0].value[1:])  # N3, E3, W3: patient 3
        expected = {name: value for facility in AUTHORITY
                    for name, value in values(facility, last, number).items()}
        assert {name: getattr(patient.best, name) for name in expected} == expected
    assert index_problems(database, tier_of) == [] and sequence_problems(database) == []
    with database.connect() as conn:
        events = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert events == patients_count * (3 + 3 * rounds)  # every message changed its patient once


def stored_patients(database: Engine) -> list[Patient]:
    with database.connect() as conn:
        return [patient_from_row(row) for row in conn.execute(select(patients)).mappings()]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_record_moved_by_a_concurrent_merge_is_locked_and_read_again(
        database: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient 1 has NORTH record N1; patient 2 has NORTH record N2 and EAST record E2, both
    carrying E-2. While a merge of N2 into N1 holds its locks, an update of E2 (naming E-2)
    locks patient 2 and waits; when it reads, N2 (carrying E-2) belongs to patient 1, which
    it had not locked: it must lock patient 1 too and read it again."""
    bus = new_bus()
    apply(database, bus, command("NORTH", 1, "seed-n1", link=True))
    apply(database, bus, command("NORTH", 2, "seed-n2", link=True))
    apply(database, bus, command("EAST", 2, "seed-e2", link=True))
    merge = MergePatientRecords(
        origin=MessageOrigin(channel="hl7", sender="EMR^NORTH", control_id="merge",
                             message_type="ADT^A40", facility="NORTH"),
        merges=(RecordMerge(survivor=RecordKey("NORTH", "NGH", "N1"), prior=RecordKey("NORTH", "NGH", "N2"),
                            update=DemographicsUpdate(Demographics(names=(PersonName("MERGED"),)),
                                                      frozenset({"names"}))),))
    late_locks: list[list[str]] = []
    locking = mpi_sql.lock_patients

    def counted(conn: object, ids: list[str]) -> None:
        late_locks.append(ids)
        locking(conn, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(mpi_sql, "lock_patients", counted)
    merged = threading.Event()
    merger = threading.Thread(target=apply, args=(database, bus, merge),
                              kwargs={"hold": 0.5, "prefetched": merged})
    merger.start()
    assert merged.wait(10)
    update = command("EAST", 2, "e2-1", birth_date="1990-03-04")
    update = UpsertPatientRecord(origin=update.origin, key=update.key, update=DemographicsUpdate(
        Demographics(identifiers=(Identifier("E2", "ECC", "MR"), Identifier("E-2", "ENTERPRISE", "PI")),
                     birth_date="1990-03-04"), frozenset({"identifiers", "birth_date"})))
    apply(database, bus, update)
    merger.join(10)
    assert len(late_locks) == 1  # patient 1, after the read that found it
    assert index_problems(database, tier_of) == [] and sequence_problems(database) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_writers_numbering_the_same_subjects_in_opposite_orders_do_not_deadlock(
        database: Engine, database_url: str) -> None:
    commit_events(database, ["member-a", "member-b"])  # both counters exist
    failures: list[BaseException] = []

    def write(subjects: list[str]) -> None:
        try:
            commit_events(database, subjects)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as holder:  # a third writer holds member-b's counter a while
        holder.execute("SELECT 1 FROM subject_sequences WHERE subject = 'member-b' FOR UPDATE")
        writers = [threading.Thread(target=write, args=(order,))
                   for order in (["member-b", "member-a"], ["member-a", "member-b"])]
        for writer in writers:
            writer.start()
            time.sleep(0.3)
        holder.rollback()
    for writer in writers:
        writer.join(15)
    assert failures == []
    assert sequence_problems(database) == []


def commit_events(database: Engine, subjects: list[str]) -> None:
    with SqlUnitOfWork(database) as uow:
        for subject in subjects:
            uow.outbox.add(mpi_changed(subject, f"c-{subject}"))
        uow.commit()
