"""FHIR identifiers: unknown systems come back exactly as sent, and an untyped copy of an
identifier the patient already has is not a second identifier."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.integration.fhir_harness import CLINIC_TOKEN, GHH_MRN_SYSTEM, body, fhir_app, headers, patient
from tests.integration.test_fhir_cross_format import FHIR_PATIENT, _send_hl7

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@pytest.mark.parametrize("system", [
    "http:/example.org/ids",  # one slash: not a URL, still the sender's system
    "urn:uuid:5f0e2f0c-7d3a-4c53-9d7e-0a1b2c3d4e5f",
    "https://registry.example.org/ids/Patient-ID",
    "ftp://legacy.example.org/mrn",
])
def test_an_unknown_system_is_given_back_exactly(system: str, database_url: str, tmp_path: Path) -> None:
    resource = patient("U-1", identifier=[
        {"type": {"coding": [{"system": V2_0203, "code": "MR"}]},
         "system": "http://clinic.example.org/mrn", "value": "U-1"},
        {"system": system, "value": "X-42"}])
    with fhir_app(database_url, tmp_path, clients=True) as (client, _):
        created = client.post("/fhir/Patient", content=body(resource), headers=headers(CLINIC_TOKEN))
        assert created.status_code == 201, created.text
        read = client.get(f"/fhir/Patient/{created.json()['id']}", headers=headers(CLINIC_TOKEN)).json()
        assert {"system": system, "value": "X-42"} in read["identifier"]
        found = client.get("/fhir/Patient", params={"identifier": f"{system}|X-42"},
                           headers=headers(CLINIC_TOKEN)).json()
        assert found["total"] == 1


def test_an_untyped_identifier_the_patient_has_is_not_a_second_copy(database_url: str,
                                                                   tmp_path: Path) -> None:
    clinic = copy.deepcopy(FHIR_PATIENT)
    del clinic["identifier"][1]["type"]  # the hospital's MRN, sent without a type this time
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        assert b"MSA|AA" in _send_hl7(runtime)  # GHH's A04: 555123^^^GHH^MR
        created = client.post("/fhir/Patient", content=body(clinic), headers=headers(CLINIC_TOKEN))
        assert created.status_code == 201, created.text
        [view] = runtime.search.by_identifier("GHH", "555123")
        copies = [i for i in view.patient.best.identifiers if (i.authority, i.value) == ("GHH", "555123")]
        assert [i.type_code for i in copies] == ["MR"]
        # One resource holding the number twice, typed and not, keeps it once.
        twice = copy.deepcopy(FHIR_PATIENT)
        twice["identifier"][0]["value"] = "C-778"
        twice["identifier"].append({"system": GHH_MRN_SYSTEM, "value": "555123"})
        again = client.post("/fhir/Patient", content=body(twice), headers=headers(CLINIC_TOKEN))
        ghh = [i for i in again.json()["identifier"] if i["value"] == "555123"]
        assert len(ghh) == 1 and ghh[0]["type"]["coding"][0]["code"] == "MR"
