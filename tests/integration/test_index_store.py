"""The index on a real database (SQLite file and PostgreSQL): batches, reloads, search."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import Engine, func, select

from engine.handlers import MessageBus
from engine.rules import parse_rules
from engine.store.sql_uow import SqlUnitOfWork
from engine.store.tables import outbox
from mpi.index import PatientIndex
from mpi.model import Demographics, DemographicsUpdate, Identifier, PersonName, RecordKey
from mpi.search import MpiSearch
from mpi.tables import identifiers
from tests.fakes import FixedClock, SequentialIds
from tests.unit.test_handlers import RULES, upsert

TIERS = {"NORTH": 1, "EAST": 2}


class Env:
    def __init__(self, database: Engine) -> None:
        self.database = database
        self.clock = FixedClock(step=timedelta(seconds=1))
        self.ids = (f"r{n:04d}" for n in itertools.count(1))

    def index(self, uow: SqlUnitOfWork) -> PatientIndex:
        return PatientIndex(uow.mpi, TIERS.__getitem__, lambda: next(self.ids), self.clock.now)


def upd(**values: object) -> DemographicsUpdate:
    return DemographicsUpdate(Demographics(**values), frozenset(values))  # type: ignore[arg-type]


def ident(mrn: str, authority: str = "NGH") -> Identifier:
    return Identifier(mrn, authority, "MR")


def test_a_batch_sees_its_own_changes_and_survives_a_reload(database: Engine) -> None:
    env = Env(database)
    with SqlUnitOfWork(database) as uow:
        uow.mpi.prefetch([RecordKey("NORTH", "NGH", "1"), RecordKey("EAST", "ECC", "E1")],
                         [ident("1"), ident("E1", "ECC")])
        index = env.index(uow)
        index.upsert(RecordKey("NORTH", "NGH", "1"), upd(identifiers=(ident("1"),), names=(PersonName("N"),)))
        # A record created earlier in the same batch is found by its identifier.
        index.upsert(RecordKey("EAST", "ECC", "E1"), upd(identifiers=(ident("E1", "ECC"), ident("1")),
                                                       names=(PersonName("E"),), sex="female"))
        index.upsert(RecordKey("NORTH", "NGH", "1"), upd(birth_date="1970-05-06"))
        uow.commit()
    with SqlUnitOfWork(database) as uow:
        north = uow.mpi.get_record(RecordKey("NORTH", "NGH", "1"))
        east = uow.mpi.get_record(RecordKey("EAST", "ECC", "E1"))
        assert north and east and north.patient_id == east.patient_id
        assert north.version == 2 and north.updated_at.tzinfo is not None
        patient = uow.mpi.get_patient(north.patient_id)
        assert patient is not None
        assert (patient.best.names[0].family, patient.best.sex, patient.best.birth_date) == (
            "N", "female", "1970-05-06")
        assert patient.provenance["sex"] == "EAST"


def test_an_uncommitted_unit_of_work_leaves_nothing(database: Engine) -> None:
    env = Env(database)
    with SqlUnitOfWork(database) as uow:
        env.index(uow).upsert(RecordKey("NORTH", "NGH", "1"), upd(identifiers=(ident("1"),)))
        uow.mpi.flush()  # written inside the transaction, then rolled back on close
    with SqlUnitOfWork(database) as uow:
        assert uow.mpi.get_record(RecordKey("NORTH", "NGH", "1")) is None


def test_identifier_rows_follow_a_changed_identifier_and_merges_resolve(database: Engine) -> None:
    env = Env(database)
    with SqlUnitOfWork(database) as uow:
        index = env.index(uow)
        index.upsert(RecordKey("NORTH", "NGH", "OLD"), upd(identifiers=(ident("OLD"),),
                                                        names=(PersonName("SMITH", ("ANN",)),),
                                                        birth_date="1980-01-02"))
        index.upsert(RecordKey("NORTH", "NGH", "DUP"), upd(identifiers=(ident("DUP"),)))
        uow.commit()
    with SqlUnitOfWork(database) as uow:
        index = env.index(uow)
        index.change_identifier(RecordKey("NORTH", "NGH", "OLD"), RecordKey("NORTH", "NGH", "NEW"), upd())
        index.merge(RecordKey("NORTH", "NGH", "NEW"), RecordKey("NORTH", "NGH", "DUP"), upd())
        uow.commit()
    with database.connect() as conn:
        values = {row[0] for row in conn.execute(select(identifiers.c.value))}
    assert values == {"NEW", "DUP"}
    search = MpiSearch(database.connect)
    [by_new] = search.by_identifier("NGH", "NEW")
    [by_merged] = search.by_identifier("NGH", "DUP")
    assert by_new.patient.id == by_merged.patient.id
    assert search.by_identifier("NGH", "OLD") == []
    [by_name] = search.by_name_and_birth_date("smith", "1980-01-02", facility="NORTH")
    assert by_name.patient.id == by_new.patient.id
    assert search.by_name_and_birth_date("smith", "1980-01-02", facility="EAST") == []
    assert search.get(by_merged.patient.id) is not None


def test_outbox_rows_are_written_with_the_change(database: Engine) -> None:
    bus = MessageBus(parse_rules(RULES), FixedClock(), SequentialIds())
    with SqlUnitOfWork(database) as uow:
        bus.prefetch([upsert("1")], uow)
        bus.handle(upsert("1", sex="male"), uow)
        bus.handle(upsert("2", sex="female"), uow)
        uow.commit()
    with database.connect() as conn:
        rows = conn.execute(select(outbox.c.sequence, outbox.c.status).order_by(outbox.c.id)).all()
        assert [tuple(r) for r in rows] == [(1, "pending"), (2, "pending")]
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 2
