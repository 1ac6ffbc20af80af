"""FHIR writes in the message journal: the request, the response sent, what it changed."""

from __future__ import annotations

from pathlib import Path

from engine.journal import JournalQuery
from tests.integration.fhir_harness import CLINIC_TOKEN, body, fhir_app, headers, patient

ORG = {"display": "Burgers University Medical Centre"}  # a CLINIC alias in the test rules


def test_creates_refusals_and_bundles_are_journaled_and_reads_are_not(
        database_url: str, tmp_path: Path) -> None:
    created_body = body(patient("FJ1", managingOrganization=ORG))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient(f"FJ{n}", managingOrganization=ORG),
         "request": {"method": "POST", "url": "Patient"}} for n in (2, 3)]}
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        created = client.post("/fhir/Patient", content=created_body, headers=headers(CLINIC_TOKEN))
        refused = client.post("/fhir/Patient", content=b'{"resourceType": "Patient", "birthDate": 7}',
                              headers=headers(CLINIC_TOKEN))
        anonymous = client.post("/fhir/Patient", content=created_body, headers=headers())
        batch = client.post("/fhir", content=body(bundle), headers=headers(CLINIC_TOKEN))
        client.get(f"/fhir/Patient/{created.json()['id']}", headers=headers(CLINIC_TOKEN))
        runtime.committer.stop()  # the deferred entries are written by then
        records = list(reversed(runtime.messages.query(JournalQuery(channel="fhir"), payloads=True)))
    assert [r.entry.outcome for r in records] == ["201", "400", "401", "200"]
    create, invalid, unauthorised, batched = (r.entry for r in records)
    assert (create.sender, create.message_type) == ("fhir:clinic-emr", "POST Patient")
    assert create.control_id == created.headers["X-Request-ID"]
    assert create.payload == created_body and create.response == created.content
    assert create.effects["record"] == {"id": created.json()["id"], "version": 1, "created": True,
                                        "changed": True}
    assert invalid.error_code and invalid.error_location.startswith("Patient")
    assert invalid.response == refused.content and invalid.effects == {}
    assert unauthorised.error_code == "login" and unauthorised.payload is None
    assert anonymous.status_code == 401
    assert batched.message_type == "POST Bundle" and batch.status_code == 200
    assert [part["record"]["created"] for part in batched.effects["parts"]] == [True, True]
