"""The HTTP layer when the core or the database cannot answer: 503 with Retry-After, 500
without details; and what it logs.

The core is replaced by a double of its one port here (``apply``); everything else is real.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from engine.commands import Command, Outcome
from engine.domain.clock import SystemClock
from engine.errors import StoreUnavailable
from engine.staff import Role
from inbound.http.app import create_app
from inbound.http.fhir import FhirDependencies
from mpi.search import MpiSearch
from tests.fakes import InMemoryAuditLog, InMemoryStaffDirectory, SequentialIds
from tests.unit.fhir.fhir_rules import CLINIC_TOKEN, fhir_rules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Starlette 1.x suggests httpx2
    from fastapi.testclient import TestClient

PATIENT = {"resourceType": "Patient",
           "identifier": [{"system": "http://north.example.org/mrn", "value": "1"}]}


def _client(apply: Callable[[Command], Any]) -> TestClient:
    def no_database() -> Any:
        raise AssertionError("these requests never read")

    deps = FhirDependencies(apply=apply, rules=fhir_rules(), ids=SequentialIds(), clock=SystemClock())
    app = create_app(search=MpiSearch(no_database), staff=InMemoryStaffDirectory(), audit=InMemoryAuditLog(),
                     clock=SystemClock(), ready=dict, metrics=str, version="test", fhir=deps)
    return TestClient(app)


def _post(client: TestClient) -> Any:
    return client.post("/fhir/Patient", content=json.dumps(PATIENT),
                       headers={"Content-Type": "application/fhir+json",
                                "Authorization": f"Bearer {CLINIC_TOKEN}"})


def test_a_transient_failure_is_503_with_retry_after() -> None:
    async def unavailable(command: Command) -> Outcome:
        raise StoreUnavailable("database unavailable (OperationalError)")

    response = _post(_client(unavailable))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["issue"][0]["code"] == "transient"
    assert response.headers["X-Request-ID"] == "00000000-0000-4000-8000-000000000001.1"


def test_an_unexpected_error_is_a_500_operation_outcome() -> None:
    async def broken(command: Command) -> Outcome:
        raise RuntimeError("secret internals")

    response = _post(_client(broken))
    assert response.status_code == 500
    issue = response.json()["issue"][0]
    assert issue["code"] == "exception" and "secret" not in issue["diagnostics"]
    assert issue["expression"] == ["Patient"]


def _reads_failing() -> tuple[TestClient, str]:
    """A search whose database refuses to connect, as psycopg does when it is down."""
    def down() -> Any:
        raise OperationalError("SELECT ...", {}, psycopg.OperationalError("connection refused"))

    async def never(command: Command) -> Outcome:
        raise AssertionError("no writes here")

    deps = FhirDependencies(apply=never, rules=fhir_rules(), ids=SequentialIds(), clock=SystemClock())
    staff = InMemoryStaffDirectory()
    _, token = staff.add("reader", frozenset({Role.ADMINISTRATOR}))
    app = create_app(search=MpiSearch(down), staff=staff, audit=InMemoryAuditLog(),
                     clock=SystemClock(), ready=dict, metrics=str, version="test", fhir=deps)
    return TestClient(app), token


def test_a_read_the_database_cannot_answer_is_503_not_500() -> None:
    client, staff_token = _reads_failing()
    read = client.get("/fhir/Patient/abc", headers={"Authorization": f"Bearer {CLINIC_TOKEN}"})
    assert read.status_code == 503 and read.headers["Retry-After"] == "1"
    assert read.json()["issue"][0]["code"] == "transient"
    search = client.get("/mpi/patients", params={"identifier": "NGH|1"},
                        headers={"Authorization": f"Bearer {staff_token}"})
    assert search.status_code == 503 and search.headers["Retry-After"] == "1"
    assert "unavailable" in search.json()["detail"]


def test_an_unknown_element_is_named_to_the_client_and_not_in_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    async def never(command: Command) -> Outcome:
        raise AssertionError("refused before the core")

    caplog.set_level(logging.INFO, logger="inbound.http.fhir")
    body = {**PATIENT, "name": [{"family": "DOE", "SMITHERSON": "x"}]}
    response = _client(never).post("/fhir/Patient", content=json.dumps(body), headers={
        "Content-Type": "application/fhir+json", "Authorization": f"Bearer {CLINIC_TOKEN}"})
    assert response.json()["issue"][0]["expression"] == ["Patient.name[0].SMITHERSON"]
    logged = [r.getMessage() for r in caplog.records if r.name == "inbound.http.fhir"]
    assert logged and "Patient.name[0].(unknown element)" in logged[0]
    assert "SMITHERSON" not in caplog.text
