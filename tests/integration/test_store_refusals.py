"""Permanent trouble is refused before the database, alike on SQLite and PostgreSQL, and no
failure path keeps a pooled connection.

The engine runs for real (MLLP listener, HTTP API, group committer, SQL store); HL7 goes over
TCP, FHIR over HTTP with a client's token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from engine.errors import InvalidMessage, StoreUnavailable
from engine.store.database import open_database
from engine.store.errors import classify_store_error
from engine.store.sql_uow import SqlUnitOfWork, WriterConnection
from mpi.model import Demographics, PersonName, RecordKey, SourceRecord
from mpi.tables import source_records
from tests.conftest import POSTGRES_ADMIN_URL
from tests.integration.engine_harness import MllpConnection, RunningEngine, adt, msa, running_engine
from tests.integration.fhir_harness import CLINIC_TOKEN, FHIR_JSON, patient, rules_yaml

FHIR_HEADERS = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {CLINIC_TOKEN}"}


@pytest.fixture
def rules_with_clients(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(rules_yaml(clients=True), encoding="utf-8")
    return path


@pytest.fixture
def engine(database_url: str, rules_with_clients: Path) -> Iterator[RunningEngine]:
    with running_engine(database_url, rules_with_clients) as running:
        yield running


def err_location(ack: bytes) -> str:
    for segment in ack.decode("latin-1").split("\r"):
        if segment.startswith("ERR"):
            return segment.split("|")[2]
    raise AssertionError(f"no ERR in {ack!r}")


def stored_records(engine: RunningEngine) -> int:
    with engine.runtime.database.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(source_records)).scalar_one())


def test_an_over_long_msh10_is_ar_on_both_databases(engine: RunningEngine) -> None:
    conn = MllpConnection(engine.mllp_port)
    try:
        ack = conn.exchange(adt("X" * 201, "M1"))
        assert msa(ack)[1] == "AR" and err_location(ack) == "MSH^1^10^1"
        nul = conn.exchange(adt("N1", "M2", family="DO\x00E"))
        assert msa(nul)[1] == "AR" and err_location(nul) == "PID^1^5^1^1"
        long_mrn = conn.exchange(adt("L1", "9" * 201))
        assert msa(long_mrn)[1] == "AR" and err_location(long_mrn) == "PID^1^3^1^1"
        assert stored_records(engine) == 0
        assert msa(conn.exchange(adt("X" * 200, "M1")))[1] == "AA"  # at the limit: stored
    finally:
        conn.close()
    assert stored_records(engine) == 1


def test_fhir_refusals_name_the_element_on_both_databases(engine: RunningEngine) -> None:
    long_value = patient("9" * 201)
    nul_name = patient("M1", family="DO\u0000E")
    with httpx.Client(base_url=engine.http, headers=FHIR_HEADERS, timeout=15) as client:
        too_long = client.post("/fhir/Patient", json=long_value)
        bad_text = client.post("/fhir/Patient", json=nul_name)
        assert client.post("/fhir/Patient", json=patient("M1")).status_code == 201
        found = client.get("/fhir/Patient", params={"identifier": "http://clinic.example.org/mrn|M1\x00"})
    assert too_long.status_code == 422
    assert too_long.json()["issue"][0]["expression"] == ["Patient.identifier[0].value"]
    assert bad_text.status_code == 400
    assert bad_text.json()["issue"][0]["expression"] == ["Patient.name[0].family"]
    assert found.status_code == 200 and found.json()["total"] == 0  # never sent to the database


# -- the database's own refusals: classified, and the connection returned ------------------------


def _record(mrn: str, family: str = "DOE") -> SourceRecord:
    now = datetime.now(UTC)
    return SourceRecord(id=uuid.uuid4().hex, key=RecordKey("GHH", "GHH", mrn), patient_id="p1",
                        demographics=Demographics(names=(PersonName(family),)),
                        created_at=now, updated_at=now)


def _commit(writer: WriterConnection | Engine, record: SourceRecord) -> None:
    with SqlUnitOfWork(writer) as uow:
        uow.mpi.add_record(record)
        uow.commit()


def test_a_value_the_database_refuses_is_a_rejection_not_a_retry(database: Engine) -> None:
    # Bypassing every check on purpose: what would a value the checks missed do?
    with pytest.raises(Exception) as caught:
        _commit(database, _record("1", family="SM\ud800ITH"))
    error = classify_store_error(caught.value)
    assert isinstance(error, InvalidMessage) and error.hl7_error_code == "102"
    if database.dialect.name == "postgresql":
        for mrn in ("9" * 201, "A\x00B"):
            with pytest.raises(Exception) as caught:
                _commit(database, _record(mrn))
            assert isinstance(classify_store_error(caught.value), InvalidMessage)
    _commit(database, _record("2"))  # and the database is fine afterwards


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = open_database(postgres_url)
    yield engine
    engine.dispose()


def _backends(database: Engine) -> int:
    """Connections to the test database, from every process (``pg_stat_activity``)."""
    admin = create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                                    {"db": database.url.database}).scalar_one())
    finally:
        admin.dispose()


def test_failed_units_of_work_return_their_connection(pg: Engine) -> None:
    """1,000 commits the database refuses, on a writer's long-lived connection, plus writers
    whose connection was killed under them: the pool ends where it started."""
    writer = WriterConnection(pg)
    baseline = _backends(pg)
    for number in range(1000):
        mrn = "9" * 201 if number % 2 else f"N\x00{number}"
        with pytest.raises(Exception) as caught:
            _commit(writer, _record(mrn))
        assert isinstance(classify_store_error(caught.value), InvalidMessage)
        assert pg.pool.checkedout() <= 1, f"after {number + 1} failures"  # type: ignore[attr-defined]
    for _ in range(20):
        with pytest.raises(Exception) as caught, SqlUnitOfWork(writer) as uow:
            backend = uow.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with pg.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            uow.mpi.get_record(RecordKey("GHH", "GHH", "1"))
        assert isinstance(classify_store_error(caught.value), StoreUnavailable)
    _commit(writer, _record("ok"))
    assert pg.pool.checkedout() == 1  # type: ignore[attr-defined]
    assert _backends(pg) <= baseline + 1
    writer.discard()
    assert pg.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_thousand_refusals_then_a_valid_message_is_aa_at_once(postgres_url: str,
                                                                rules_with_clients: Path) -> None:
    with running_engine(postgres_url, rules_with_clients) as engine:
        database = engine.runtime.database
        baseline = _backends(database)
        conn = MllpConnection(engine.mllp_port)
        with httpx.Client(base_url=engine.http, headers=FHIR_HEADERS, timeout=15) as client:
            for number in range(250):
                for ack in (conn.exchange(adt(f"L{number}", "9" * 201)),
                            conn.exchange(adt(f"N{number}", f"M{number}", family="DO\x00E"))):
                    assert msa(ack)[1] == "AR"
                assert client.post("/fhir/Patient", json=patient("9" * 201)).status_code == 422
                assert client.post("/fhir/Patient",
                                   json=patient(f"F{number}", family="X\u0000")).status_code == 400
        started = time.monotonic()
        ack = conn.exchange(adt("VALID-1", "GOOD-1"))
        elapsed = time.monotonic() - started
        conn.close()
        assert msa(ack)[1:3] == ["AA", "VALID-1"]
        assert elapsed < 5, f"the valid message waited {elapsed:.1f} s"
        assert database.pool.checkedout() <= 2  # type: ignore[attr-defined]  # the writer's, a reader's
        assert _backends(database) <= baseline + 2
