"""The same person sent as HL7 v2 ADT (GHH, tier 1) and as FHIR Patient (CLINIC, tier 2)
becomes one MPI patient whose best demographics follow the tier rule, in either order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.bootstrap import Runtime
from inbound.hl7.receiver import Hl7Receiver
from inbound.hl7.strict import validate_structure
from tests.integration.engine_harness import staff_headers
from tests.integration.fhir_harness import CLINIC_TOKEN, GHH_MRN_SYSTEM, body, fhir_app, headers

HL7_A04 = "\r".join([
    "MSH|^~\\&|ADT1|GHH|PORTALBRIDGE|PB|20260101120000||ADT^A04^ADT_A01|GHH-0001|P|2.5",
    "EVN|A04|20260101120000",
    "PID|1||555123^^^GHH^MR||EVERYWOMAN^EVE^E^^^^L||19620320|F|||153 FERNWOOD DR.^^STATESVILLE^OH^35292^USA^H"
    "||(206)3345232^PRN^PH",
    "PV1|1|O",
]) + "\r"

FHIR_PATIENT = {
    "resourceType": "Patient",
    "identifier": [
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": "http://clinic.example.org/mrn", "value": "C-777"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": GHH_MRN_SYSTEM, "value": "555123"},  # the hospital's MRN, as the clinic knows it
    ],
    "name": [{"use": "official", "family": "Everywoman", "given": ["Eva"]}],
    "telecom": [{"system": "email", "value": "eve@example.org", "use": "home"}],
    "gender": "female", "birthDate": "1962-03-20",
    "address": [{"use": "home", "line": ["9 Other Street"], "city": "Columbus", "state": "OH"}],
}


def _send_hl7(runtime: Runtime) -> bytes:
    receiver = Hl7Receiver(runtime.router, runtime.committer.apply, runtime.clock, runtime.rules.hl7,
                           validate=validate_structure)
    acks = asyncio.run(receiver.handle_frame(HL7_A04.encode()))
    return acks[0]


@pytest.mark.parametrize("hl7_first", [True, False], ids=["hl7-then-fhir", "fhir-then-hl7"])
def test_one_patient_from_hl7_and_fhir(hl7_first: bool, database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        for step in ("hl7", "fhir") if hl7_first else ("fhir", "hl7"):
            if step == "hl7":
                assert b"MSA|AA|GHH-0001" in _send_hl7(runtime)
            else:
                response = client.post("/fhir/Patient", content=body(FHIR_PATIENT),
                                       headers=headers(CLINIC_TOKEN))
                assert response.status_code == 201, response.text
        found = client.get("/mpi/patients", params={"identifier": "GHH|555123"},
                           headers=staff_headers(runtime)).json()
        assert found["total"] == 1
        mpi = found["patients"][0]
        assert sorted(r["facility"] for r in mpi["source_records"]) == ["CLINIC", "GHH"]
        best = mpi["best_demographics"]
        # Tier 1 (GHH, via HL7) wins every field it has, however recent the clinic's data is.
        assert best["names"] == [{"family": "EVERYWOMAN", "given": ["EVE", "E"], "prefix": "",
                                  "suffix": "", "use": "official"}]
        assert best["addresses"][0]["city"] == "STATESVILLE"
        assert (best["sex"], best["birth_date"]) == ("female", "1962-03-20")
        # A field GHH does not have comes from the next tier.
        assert best["emails"] == [{"system": "email", "value": "eve@example.org", "use": "home"}]
        assert (mpi["provenance"]["names"], mpi["provenance"]["emails"]) == ("GHH", "CLINIC")
        assert mpi["winner"] == {"facility": "GHH", "tier": 1}
        # Both source records are FHIR Patients; the HL7 one's authority is written as GHH's URI.
        search = client.get("/fhir/Patient", params={"identifier": f"{GHH_MRN_SYSTEM}|555123"},
                            headers=headers(CLINIC_TOKEN)).json()
        assert search["total"] == 2
        systems = {i["system"] for e in search["entry"] for i in e["resource"]["identifier"]}
        assert GHH_MRN_SYSTEM in systems
