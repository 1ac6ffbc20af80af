"""Transaction (all or nothing) and batch (each entry alone) Bundles on a real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from tests.integration.fhir_harness import (
    body,
    fhir_app,
    headers,
    issue,
    outbox_rows,
    patient,
    record_rows,
)

ORG = {"display": "Burgers University Medical Centre"}  # a CLINIC alias in the test rules


def _bundle(kind: str, *entries: dict[str, Any]) -> bytes:
    return body({"resourceType": "Bundle", "type": kind, "entry": list(entries)})


def _post(resource: dict[str, Any], full_url: str = "", **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST", "url": "Patient", **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _put(record_id: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {"resource": {**resource, "id": record_id},
            "request": {"method": "PUT", "url": f"Patient/{record_id}", **request}}


def test_a_transaction_applies_every_entry_and_resolves_urn_uuids(database_url: str, tmp_path: Path) -> None:
    old = "urn:uuid:8f0c3f0e-0000-4000-8000-000000000001"
    new = "urn:uuid:8f0c3f0e-0000-4000-8000-000000000002"
    replacing = patient("T2", managingOrganization=ORG,
                        link=[{"other": {"reference": old}, "type": "replaces"}])
    content = _bundle("transaction", _put("tx-put-1", patient("T3", managingOrganization=ORG)),
                      _post(patient("T1", managingOrganization=ORG), old), _post(replacing, new))
    with fhir_app(database_url, tmp_path) as (client, runtime):
        response = client.post("/fhir", content=content, headers=headers())
        assert response.status_code == 200, response.text
        answer = response.json()
        Bundle.model_validate(answer)
        assert answer["type"] == "transaction-response"
        statuses = [e["response"]["status"] for e in answer["entry"]]
        assert statuses == ["201 Created"] * 3  # in request order, though POSTs ran first
        assert answer["entry"][0]["resource"]["id"] == "tx-put-1"
        first, second = answer["entry"][1]["resource"], answer["entry"][2]["resource"]
        assert first["link"] == [{"other": {"reference": f"Patient/{second['id']}"}, "type": "replaced-by"}]
        assert first["active"] is False
        assert record_rows(runtime) == 3
        events = outbox_rows(runtime)
        # Resent: T1 has been merged away since, and a merged record takes no writes.
        again = client.post("/fhir", content=content, headers=headers())
        assert again.status_code == 409
        assert issue(again)["expression"] == ["Bundle.entry[1].resource.identifier"]
        assert (record_rows(runtime), outbox_rows(runtime)) == (3, events)


def test_a_resent_transaction_is_not_applied_twice(database_url: str, tmp_path: Path) -> None:
    content = _bundle("transaction", _post(patient("U1", managingOrganization=ORG)),
                      _put("tx-put-2", patient("U2", managingOrganization=ORG)))
    with fhir_app(database_url, tmp_path) as (client, runtime):
        first = client.post("/fhir", content=content, headers=headers()).json()
        assert [e["response"]["status"] for e in first["entry"]] == ["201 Created"] * 2
        events = outbox_rows(runtime)
        again = client.post("/fhir", content=content, headers=headers()).json()
        assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 2
        assert [e["response"]["etag"] for e in again["entry"]] == ['W/"1"'] * 2
        assert [e["resource"]["id"] for e in again["entry"]] == [e["resource"]["id"] for e in first["entry"]]
        assert (record_rows(runtime), outbox_rows(runtime)) == (2, events)


def test_a_conditional_create_in_a_transaction_binds_references_to_the_match(database_url: str,
                                                                            tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        existing = client.post("/fhir/Patient", content=body(patient("K1", managingOrganization=ORG)),
                               headers=headers()).json()
        ref = "urn:uuid:8f0c3f0e-0000-4000-8000-00000000000a"
        content = _bundle(
            "transaction",
            _post(patient("K1", family="Ignored", managingOrganization=ORG), ref,
                  ifNoneExist="identifier=http://clinic.example.org/mrn|K1"),
            _post(patient("K2", managingOrganization=ORG,
                          link=[{"other": {"reference": ref}, "type": "replaces"}])))
        response = client.post("/fhir", content=content, headers=headers())
        assert response.status_code == 200, response.text
        assert [e["response"]["status"] for e in response.json()["entry"]] == ["200 OK", "201 Created"]
        merged = client.get(f"/fhir/Patient/{existing['id']}").json()
        assert merged["link"][0]["type"] == "replaced-by"
        assert record_rows(runtime) == 2


def test_one_bad_entry_stores_nothing(database_url: str, tmp_path: Path) -> None:
    good = _post(patient("R1", managingOrganization=ORG))
    with fhir_app(database_url, tmp_path) as (client, runtime):
        invalid = _post(patient("R2", managingOrganization=ORG, given=("",)))
        response = client.post("/fhir", content=_bundle("transaction", good, invalid), headers=headers())
        assert response.status_code == 400
        assert issue(response)["expression"] == ["Bundle.entry[1].resource.name[0].given[0]"]

        stale = _put("rb-1", patient("R3", managingOrganization=ORG), ifMatch='W/"4"')
        response = client.post("/fhir", content=_bundle("transaction", good, stale), headers=headers())
        assert response.status_code == 412  # found by the core, inside the transaction
        assert issue(response)["expression"] == ["Bundle.entry[1].request.ifMatch"]

        other = {"resource": {"resourceType": "Organization", "name": "X"},
                 "request": {"method": "POST", "url": "Organization"}}
        response = client.post("/fhir", content=_bundle("transaction", good, other), headers=headers())
        assert response.status_code == 404
        assert issue(response)["expression"] == ["Bundle.entry[1].request.url"]
        assert (record_rows(runtime), outbox_rows(runtime)) == (0, 0)

        client.post("/fhir/Patient", content=body(patient("R9", managingOrganization=ORG)), headers=headers())
        taken = _post(patient("R9", family="Someone-Else", managingOrganization=ORG))
        response = client.post("/fhir", content=_bundle("transaction", good, taken), headers=headers())
        assert response.status_code == 409
        assert issue(response)["expression"] == ["Bundle.entry[1].resource.identifier"]
        assert (record_rows(runtime), outbox_rows(runtime)) == (1, 1)  # only R9, sent on its own


def test_a_batch_answers_every_entry_on_its_own(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        client.post("/fhir/Patient", content=body(patient("B9", managingOrganization=ORG)), headers=headers())
        content = _bundle(
            "batch",
            _post(patient("B1", managingOrganization=ORG)),
            _post(patient("B2", managingOrganization=ORG, gender="M")),
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Patient/x"}},
            _post(patient("B9", family="Someone-Else", managingOrganization=ORG)),
            _put("batch-3", patient("B3", managingOrganization=ORG)),
            _post(patient("B4", managingOrganization=ORG,
                          link=[{"other": {"reference": "urn:uuid:0"}, "type": "replaces"}])),
        )
        response = client.post("/fhir", content=content, headers=headers())
        assert response.status_code == 200
        answer = response.json()
        Bundle.model_validate(answer)
        assert answer["type"] == "batch-response"
        statuses = [e["response"]["status"][:3] for e in answer["entry"]]
        assert statuses == ["201", "400", "404", "405", "409", "201", "422"]
        expressions = [e["response"]["outcome"]["issue"][0]["expression"][0]
                       for e in answer["entry"] if "outcome" in e["response"]]
        assert expressions == ["Bundle.entry[1].resource.gender", "Bundle.entry[2].request.url",
                               "Bundle.entry[3].request.method", "Bundle.entry[4].resource.identifier",
                               "Bundle.entry[6].resource.link[0].other"]
        assert record_rows(runtime) == 3


def test_bundles_other_than_transaction_or_batch(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        response = client.post("/fhir", content=_bundle("collection"), headers=headers())
        assert response.status_code == 400 and issue(response)["expression"] == ["Bundle.type"]
        empty = client.post("/fhir", content=_bundle("transaction"), headers=headers())
        assert empty.status_code == 200 and empty.json()["entry"] == []
        no_request = client.post("/fhir", content=_bundle("batch", {"resource": patient("X")}),
                                 headers=headers())
        assert no_request.status_code == 400
        assert issue(no_request)["expression"] == ["Bundle.entry[0].request"]
