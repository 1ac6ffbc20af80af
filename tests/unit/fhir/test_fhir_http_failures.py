"""The HTTP layer when the core cannot answer: 503 with Retry-After, 500 without details.

The core is replaced by a double of its one port here (``apply``); everything else is real.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

from engine.commands import Command, Outcome
from engine.domain.clock import SystemClock
from engine.errors import StoreUnavailable
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
