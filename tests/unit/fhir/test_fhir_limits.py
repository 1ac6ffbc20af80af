"""Values the store cannot hold are refused in FHIR terms: 400/422 naming the element.

The core is a double of its one port (``apply``), which must never be reached.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from engine.commands import Command, Outcome
from engine.domain.clock import SystemClock
from inbound.http.app import create_app
from inbound.http.fhir import FhirDependencies
from mpi.search import MpiSearch
from tests.fakes import InMemoryAuditLog, InMemoryStaffDirectory, SequentialIds
from tests.unit.fhir.fhir_rules import CLINIC_TOKEN, fhir_rules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Starlette 1.x suggests httpx2
    from fastapi.testclient import TestClient

HEADERS = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {CLINIC_TOKEN}"}


@pytest.fixture
def client() -> TestClient:
    async def never(command: Command) -> Outcome:
        raise AssertionError(f"a refused request reached the core: {command!r}")

    def no_database() -> Any:
        raise AssertionError("these requests never read")

    deps = FhirDependencies(apply=never, rules=fhir_rules(), ids=SequentialIds(), clock=SystemClock())
    app = create_app(search=MpiSearch(no_database), staff=InMemoryStaffDirectory(),
                     audit=InMemoryAuditLog(), clock=SystemClock(), ready=dict, metrics=str,
                     version="test", fhir=deps)
    return TestClient(app)


def patient(**elements: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "identifier": [
        {"system": "http://north.example.org/mrn", "value": "1"}]}
    body.update(elements)
    return body


def post(client: TestClient, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    response = client.post("/fhir/Patient", content=json.dumps(body), headers={**HEADERS, **headers})
    return response.status_code, response.json()["issue"][0]


@pytest.mark.parametrize(("identifier", "element"), [
    ({"system": "http://north.example.org/mrn", "value": "9" * 201}, "value"),
    ({"system": "urn:x:" + "s" * 250, "value": "1"}, "system"),
    ({"system": "http://north.example.org/mrn", "value": "1", "type": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "T" * 17}]}}, "type"),
])
def test_an_identifier_that_does_not_fit_is_422_too_long(client: TestClient, identifier: dict[str, Any],
                                                         element: str) -> None:
    body = patient(identifier=[{"system": "http://north.example.org/mrn", "value": "1"}, identifier])
    status, issue = post(client, body)
    assert (status, issue["code"]) == (422, "too-long")
    assert issue["expression"] == [f"Patient.identifier[1].{element}"]


@pytest.mark.parametrize(("elements", "expression"), [
    ({"name": [{"family": "DO\u0000E"}]}, "Patient.name[0].family"),
    ({"address": [{"line": ["1 Main", "Apt\u00072"]}]}, "Patient.address[0].line[1]"),
    ({"identifier": [{"system": "http://north.example.org/mrn", "value": "1\u0000"}]},
     "Patient.identifier[0].value"),
    ({"link": [{"other": {"reference": "Patient/a\u0000b"}, "type": "seealso"}]},
     "Patient.link[0].other.reference"),
])
def test_control_characters_are_400_at_their_element(client: TestClient, elements: dict[str, Any],
                                                     expression: str) -> None:
    status, issue = post(client, patient(**elements))
    assert status == 400
    assert issue["expression"] == [expression]
    assert "U+00" in issue["diagnostics"]


def test_a_lone_surrogate_is_400_at_its_element(client: TestClient) -> None:
    body = json.dumps(patient(name=[{"family": "DOE"}])).replace('"DOE"', '"DO\\ud800E"')
    response = client.post("/fhir/Patient", content=body, headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.name[0].family"]


def test_a_bundle_entry_is_named_inside_the_bundle(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b1e6e4e-0000-4000-8000-000000000001",
         "resource": patient(name=[{"family": "DO\u0000E"}]),
         "request": {"method": "POST", "url": "Patient"}}]}
    response = client.post("/fhir", content=json.dumps(bundle), headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.name[0].family"]


def test_a_condition_that_cannot_be_stored_is_400(client: TestClient) -> None:
    status, issue = post(client, patient(), **{"If-None-Exist": "identifier=urn:x|1%00"})
    assert status == 400 and issue["expression"] == ["http.If-None-Exist"]


def test_a_link_to_an_id_longer_than_any_record_id_is_422(client: TestClient) -> None:
    body = patient(link=[{"other": {"reference": "Patient/" + "a" * 65}, "type": "replaced-by"}])
    status, issue = post(client, body)
    assert status == 422 and issue["expression"] == ["Patient.link[0].other"]
