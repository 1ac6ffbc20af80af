"""The FHIR REST interactions on a real database: create, read, update, search, conditions."""

from __future__ import annotations

from pathlib import Path

from fhir.resources.patient import Patient as R5Patient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as R4BPatient

from tests.integration.fhir_harness import (
    CLINIC_TOKEN,
    LAB_TOKEN,
    body,
    fhir_app,
    headers,
    issue,
    outbox_rows,
    patient,
    record_rows,
)

SYSTEM = "http://clinic.example.org/mrn"
ORG = {"display": "Burgers University Medical Centre"}  # a CLINIC alias in the test rules


def test_create_then_read_with_fhir_headers(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        created = client.post("/fhir/Patient", content=body(patient("A1", managingOrganization=ORG)),
                              headers=headers())
        assert created.status_code == 201
        record_id = created.json()["id"]
        assert created.headers["Location"] == f"http://testserver/fhir/Patient/{record_id}/_history/1"
        assert created.headers["ETag"] == 'W/"1"'
        assert created.headers["Last-Modified"].endswith("GMT")
        assert created.headers["Content-Type"].startswith("application/fhir+json")
        R4BPatient.model_validate(created.json())  # what we write is valid FHIR, in R4 and R5
        R5Patient.model_validate(created.json())
        read = client.get(f"/fhir/Patient/{record_id}")
        assert read.status_code == 200 and read.json() == created.json()
        assert read.headers["ETag"] == 'W/"1"'
        assert read.json()["managingOrganization"]["identifier"]["value"] == "CLINIC"
        assert client.get(f"/fhir/Patient/{record_id}/_history/1").status_code == 200
        old = client.get(f"/fhir/Patient/{record_id}/_history/7")
        assert old.status_code == 404 and issue(old)["expression"] == ["Patient.meta.versionId"]


def test_unknown_id_is_404(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        response = client.get("/fhir/Patient/does-not-exist")
        assert response.status_code == 404
        assert issue(response)["code"] == "not-found"
        OperationOutcome.model_validate(response.json())


def test_a_resend_is_not_applied_twice(database_url: str, tmp_path: Path) -> None:
    resource = patient("A2", managingOrganization=ORG)
    with fhir_app(database_url, tmp_path) as (client, runtime):
        first = client.post("/fhir/Patient", content=body(resource), headers=headers())
        again = client.post("/fhir/Patient", content=body(resource), headers=headers())
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["ETag"] == 'W/"1"'
        record_id = first.json()["id"]
        same = client.put(f"/fhir/Patient/{record_id}", content=body({**resource, "id": record_id}),
                          headers=headers())
        assert same.status_code == 200 and same.headers["ETag"] == 'W/"1"'
        assert (record_rows(runtime), outbox_rows(runtime)) == (1, 1)


def test_a_create_naming_a_taken_identifier_with_other_data_is_409(database_url: str,
                                                                    tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        client.post("/fhir/Patient", content=body(patient("A3", managingOrganization=ORG)), headers=headers())
        other_data = patient("A3", family="Other", managingOrganization=ORG)
        other = client.post("/fhir/Patient", content=body(other_data),
                            headers=headers())
        assert other.status_code == 409
        assert issue(other)["expression"] == ["Patient.identifier"]


def test_update_with_if_match(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        record_id = client.post("/fhir/Patient", content=body(patient("A4", managingOrganization=ORG)),
                                headers=headers()).json()["id"]
        changed = patient("A4", family="Chalmers-Windsor", managingOrganization=ORG, id=record_id)
        updated = client.put(f"/fhir/Patient/{record_id}", content=body(changed),
                             headers=headers(If_Match='W/"1"'))
        assert updated.status_code == 200 and updated.headers["ETag"] == 'W/"2"'
        assert updated.json()["name"][0]["family"] == "Chalmers-Windsor"
        stale = client.put(f"/fhir/Patient/{record_id}", content=body({**changed, "gender": "other"}),
                           headers=headers(If_Match='W/"1"'))
        assert stale.status_code == 412
        assert issue(stale)["expression"] == ["http.If-Match"]
        bad = client.put(f"/fhir/Patient/{record_id}", content=body(changed), headers=headers(If_Match="1"))
        assert bad.status_code == 400 and issue(bad)["expression"] == ["http.If-Match"]
        assert outbox_rows(runtime) == 2  # the create and the one real update


def test_update_creates_under_a_new_id_and_checks_the_body_id(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        created = client.put("/fhir/Patient/emr-42", content=body(patient("A5", managingOrganization=ORG,
                                                                           id="emr-42")), headers=headers())
        assert created.status_code == 201 and created.json()["id"] == "emr-42"
        assert created.headers["Location"].endswith("/fhir/Patient/emr-42/_history/1")
        mismatch = client.put("/fhir/Patient/emr-43", content=body(patient("A6", managingOrganization=ORG,
                                                                            id="emr-42")), headers=headers())
        assert mismatch.status_code == 400 and issue(mismatch)["expression"] == ["Patient.id"]
        missing = client.put("/fhir/Patient/emr-44", content=body(patient("A7", managingOrganization=ORG)),
                             headers=headers())
        assert missing.status_code == 400
        guarded = client.put("/fhir/Patient/emr-45", content=body(patient("A8", managingOrganization=ORG,
                                                                           id="emr-45")),
                             headers=headers(If_Match='W/"1"'))
        assert guarded.status_code == 412  # If-Match on a record that does not exist


def test_conditional_create(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        first = client.post("/fhir/Patient", content=body(patient("C1", managingOrganization=ORG)),
                            headers=headers()).json()
        condition = f"identifier={SYSTEM}|C1"
        other_data = patient("C9", family="Else", managingOrganization=ORG)
        matched = client.post("/fhir/Patient", content=body(other_data),
                              headers=headers(If_None_Exist=condition))
        assert matched.status_code == 200 and matched.json() == first
        fresh = client.post("/fhir/Patient", content=body(patient("C2", managingOrganization=ORG)),
                            headers=headers(If_None_Exist=f"identifier={SYSTEM}|nobody"))
        assert fresh.status_code == 201
        shared = {"system": "urn:oid:1.2.3.4", "value": "SHARED"}
        for mrn in ("C3", "C4"):
            resource = patient(mrn, managingOrganization=ORG)
            resource["identifier"].append(shared)
            client.post("/fhir/Patient", content=body(resource), headers=headers())
        several = client.post("/fhir/Patient", content=body(patient("C5", managingOrganization=ORG)),
                              headers=headers(If_None_Exist="identifier=urn:oid:1.2.3.4|SHARED"))
        assert several.status_code == 412 and issue(several)["expression"] == ["http.If-None-Exist"]
        odd = client.post("/fhir/Patient", content=body(patient("C6", managingOrganization=ORG)),
                          headers=headers(If_None_Exist="family=Chalmers"))
        assert odd.status_code == 400 and issue(odd)["expression"] == ["http.If-None-Exist"]
        assert record_rows(runtime) == 4


def test_search_by_identifier(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        made = client.post("/fhir/Patient", content=body(patient("S1", managingOrganization=ORG)),
                           headers=headers()).json()
        found = client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|S1"})
        assert found.status_code == 200
        bundle = found.json()
        Bundle.model_validate(bundle)
        assert (bundle["type"], bundle["total"]) == ("searchset", 1)
        assert bundle["entry"][0]["resource"] == made
        assert bundle["entry"][0]["fullUrl"] == f"http://testserver/fhir/Patient/{made['id']}"
        # The system written back (the authority's URI alias) finds it too, as does the bare value.
        assert client.get("/fhir/Patient", params={"identifier": "S1"}).json()["total"] == 1
        either = client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|S0,{SYSTEM}|S1"})
        assert either.json()["total"] == 1
        assert client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|S2"}).json()["total"] == 0
        assert client.get("/fhir/Patient").status_code == 400
        lenient = client.get("/fhir/Patient", params={"identifier": "S1", "_count": "5"})
        assert lenient.json()["total"] == 1
        strict = client.get("/fhir/Patient", params={"identifier": "S1", "_count": "5"},
                            headers={"Prefer": "handling=strict"})
        assert strict.status_code == 400 and issue(strict)["expression"] == ["http._count"]


def test_prefer_return(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        minimal = client.post("/fhir/Patient", content=body(patient("P1", managingOrganization=ORG)),
                              headers=headers(Prefer="return=minimal"))
        assert minimal.status_code == 201 and minimal.content == b"" and minimal.headers["Location"]
        outcome = client.post("/fhir/Patient", content=body(patient("P2", managingOrganization=ORG)),
                              headers=headers(Prefer="return=OperationOutcome"))
        assert outcome.json()["issue"][0]["severity"] == "information"


def test_metadata_states_what_is_supported(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path, clients=True) as (client, _):
        response = client.get("/fhir/metadata")  # no token needed
        assert response.status_code == 200
        statement = response.json()
        CapabilityStatement.model_validate(statement)
        assert statement["fhirVersion"] == "4.0.1"
        rest = statement["rest"][0]
        assert [r["type"] for r in rest["resource"]] == ["Patient"]
        assert {i["code"] for i in rest["resource"][0]["interaction"]} == {
            "read", "vread", "update", "create", "search-type"}
        assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
        assert [p["name"] for p in rest["resource"][0]["searchParam"]] == ["identifier"]
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/fhir/Patient", "/fhir/Patient/{record_id}", "/fhir"} <= set(paths)


def test_tokens_when_clients_are_configured(database_url: str, tmp_path: Path) -> None:
    resource = body(patient("T1"))
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        missing = client.post("/fhir/Patient", content=resource, headers=headers())
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert issue(missing)["expression"] == ["http.Authorization"]
        wrong = client.post("/fhir/Patient", content=resource, headers=headers("not-a-token"))
        assert wrong.status_code == 401
        assert client.get("/fhir/Patient", params={"identifier": "T1"}).status_code == 401
        made = client.post("/fhir/Patient", content=resource, headers=headers(CLINIC_TOKEN))
        assert made.status_code == 201
        stored = runtime.search.record(made.json()["id"])
        assert stored is not None and stored.record.key.facility == "CLINIC"


def test_a_client_cannot_write_for_another_facility(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        lab = patient("F1", managingOrganization={"display": "AUMC"})
        other = client.post("/fhir/Patient", content=body(lab),
                            headers=headers(CLINIC_TOKEN))
        assert other.status_code == 403 and issue(other)["expression"] == ["Patient.managingOrganization"]
        # An organization routing.yaml does not know is information only.
        unknown_org = patient("F2", managingOrganization={"display": "X"})
        unknown = client.post("/fhir/Patient", content=body(unknown_org),
                              headers=headers(CLINIC_TOKEN))
        assert unknown.status_code == 201
        record_id = unknown.json()["id"]
        taken = client.put(f"/fhir/Patient/{record_id}", content=body(patient("F2", id=record_id)),
                           headers=headers(LAB_TOKEN))
        assert taken.status_code == 409  # a record belongs to the facility that created it
        assert record_rows(runtime) == 1


def test_the_facility_comes_from_the_resource_without_clients(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        nowhere = client.post("/fhir/Patient", content=body(patient("N1")), headers=headers())
        assert nowhere.status_code == 422
        assert issue(nowhere)["expression"] == ["Patient.managingOrganization"]
        by_reference = patient("N2", managingOrganization={"reference": "Organization/LAB"})
        assert _facility(client, runtime, by_reference) == "LAB"
        by_identifier = patient("N3", managingOrganization={"identifier": {"system": "x", "value": "ghh"}})
        assert _facility(client, runtime, by_identifier) == "GHH"
        by_assigner = patient("N4")
        by_assigner["identifier"][0]["assigner"] = {"display": "Ntierprise Clinic"}
        assert _facility(client, runtime, by_assigner) == "CLINIC"
        contained = patient("N5", managingOrganization={"reference": "#org"},
                            contained=[{"resourceType": "Organization", "id": "org", "name": "Reference Lab",
                                        "identifier": [{"system": "urn:x", "value": "LAB"}]}])
        assert _facility(client, runtime, contained) == "LAB"


def _facility(client: object, runtime: object, resource: dict[str, object]) -> str:
    response = client.post("/fhir/Patient", content=body(resource), headers=headers())  # type: ignore[attr-defined]
    assert response.status_code == 201, response.text
    stored = runtime.search.record(response.json()["id"])  # type: ignore[attr-defined]
    return str(stored.record.key.facility)


def test_patient_links_merge_records(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        old = client.post("/fhir/Patient", content=body(patient("L1", managingOrganization=ORG)),
                          headers=headers()).json()
        new = client.post("/fhir/Patient", content=body(patient("L2", managingOrganization=ORG)),
                          headers=headers()).json()
        linked = patient("L1", managingOrganization=ORG, id=old["id"],
                         link=[{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}])
        response = client.put(f"/fhir/Patient/{old['id']}", content=body(linked), headers=headers())
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
        assert response.json()["link"] == [{"other": {"reference": f"Patient/{new['id']}"},
                                            "type": "replaced-by"}]
        again = client.put(f"/fhir/Patient/{old['id']}", content=body({**linked, "link": []}),
                           headers=headers())
        assert again.status_code == 422  # a merged-away record takes no more writes
        assert issue(again)["expression"] == ["Patient.id"]
        survivor = client.get(f"/fhir/Patient/{new['id']}").json()
        assert survivor["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
        views = runtime.search.by_identifier(None, "L2")
        assert len(views) == 1 and len(views[0].records) == 2
        dangling = patient("L3", managingOrganization=ORG,
                           link=[{"other": {"reference": "Patient/nobody"}, "type": "replaces"}])
        refused = client.post("/fhir/Patient", content=body(dangling), headers=headers())
        assert refused.status_code == 422 and issue(refused)["expression"] == ["Patient.link[0].other"]
        assert record_rows(runtime) == 2
