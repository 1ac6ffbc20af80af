"""Two writers (threads or processes) at once must not split one person into two patients."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from sqlalchemy import Engine, func, select

from engine.store.sql_uow import SqlUnitOfWork
from mpi.index import PatientIndex
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey
from mpi.tables import patients
from tests.fakes import FixedClock

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
