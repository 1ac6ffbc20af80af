"""No anonymous FHIR: without a client token every request but the CapabilityStatement is 401,
also with no client configured at all; ``allow_anonymous`` opens it and says so loudly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.integration.fhir_harness import (
    CLINIC_TOKEN,
    body,
    fhir_app,
    headers,
    issue,
    patient,
    record_rows,
)

ORG = {"reference": "Organization/CLINIC"}
CLOSED = {"fhir": {"allow_anonymous": False}}


def test_with_no_client_configured_every_request_is_refused_with_how_to_add_one(
        database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with fhir_app(database_url, tmp_path, extra=CLOSED) as (client, runtime):
        write = client.post("/fhir/Patient", content=body(patient("A1", managingOrganization=ORG)),
                            headers=headers())
        assert write.status_code == 401 and write.headers["WWW-Authenticate"].startswith("Bearer")
        found = issue(write)
        assert found["code"] == "login"
        assert "portalbridge fhir token NAME --facility CODE" in found["diagnostics"]
        assert record_rows(runtime) == 0
        for url in ("/fhir/Patient?identifier=http://clinic.example.org/mrn|A1", "/fhir/Patient/x"):
            assert client.get(url, headers=headers()).status_code == 401  # reads need it too
        bundle = client.post("/fhir", content=b'{"resourceType": "Bundle"}', headers=headers())
        assert bundle.status_code == 401
        assert client.get("/fhir/metadata").status_code == 200
    assert "routing.yaml lists no clients" in caplog.text


def test_a_clients_facility_comes_from_its_token_not_the_resource(database_url: str,
                                                                 tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        # The resource names GHH (tier 1) by its identifier's assigner; the clinic's token wins.
        claimed = patient("B1", identifier=[{"system": "http://clinic.example.org/mrn", "value": "B1",
                                             "assigner": {"reference": "Organization/GHH"}}])
        created = client.post("/fhir/Patient", content=body(claimed), headers=headers(CLINIC_TOKEN))
        assert created.status_code == 201
        record = runtime.search.record(created.json()["id"])
        assert record is not None and record.record.key.facility == "CLINIC"
        stolen = patient("B2", managingOrganization={"reference": "Organization/GHH"})
        refused = client.post("/fhir/Patient", content=body(stolen), headers=headers(CLINIC_TOKEN))
        assert refused.status_code == 403


def test_allow_anonymous_is_a_warning_at_every_start(database_url: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(2):
        with fhir_app(database_url, tmp_path) as (client, _runtime):
            created = client.post("/fhir/Patient", content=body(patient("C1", managingOrganization=ORG)),
                                  headers=headers())
            assert created.status_code in (200, 201)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "fhir.allow_anonymous is true" in r.getMessage()]
    assert len(warnings) == 2
