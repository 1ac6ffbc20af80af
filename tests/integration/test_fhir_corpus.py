"""Every FHIR file of the public corpus through the HTTP API, with its decided outcome.

Accepted resources are checked field by field in the stored source record (what the MPI
ranks); refused ones by status, issue type and expression. The per-file decisions are in
docs/fhir.md ("The corpus").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mpi.model import Address, Demographics, Identifier, PersonName, RecordKey, Telecom
from tests.conftest import FHIR_CORPUS
from tests.integration.fhir_harness import (
    CLINIC_TOKEN,
    LAB_TOKEN,
    corpus,
    fhir_app,
    headers,
    issue,
    record_rows,
)

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CHALMERS = Demographics(
    identifiers=(Identifier("12345", "1.2.36.146.595.217.0.1", "MR"),),
    names=(PersonName("Chalmers", ("Peter", "James"), use="official"),
           PersonName("", ("Jim",), use="usual"),
           PersonName("Windsor", ("Peter", "James"), use="maiden")),
    birth_date="1974-12-25", sex="male",
    addresses=(Address(("534 Erewhon St",), "PleasantVille", "Vic", "3999", "", "home"),),
    phones=(Telecom("phone", "(03) 5555 6473", "work"), Telecom("phone", "(03) 3410 5613", "mobile"),
            Telecom("phone", "(03) 5555 8834", "old")),
    deceased=False, active=True)

ACCEPTED: dict[str, tuple[dict[str, str], RecordKey, Demographics]] = {
    "fhirpath-js/r4-patient-example.json": (
        {"token": CLINIC_TOKEN}, RecordKey("CLINIC", "1.2.36.146.595.217.0.1", "12345"), CHALMERS),
    # Byte-identical to the R4 file; read with the R5 models because the request says 5.0.
    "fhirpath-js/r5-patient-example.json": (
        {"token": CLINIC_TOKEN, "version": "5.0"},
        RecordKey("CLINIC", "1.2.36.146.595.217.0.1", "12345"), CHALMERS),
    # No token: managingOrganization display "ACME Healthcare, Inc" is a CLINIC alias.
    "lfh-fhir/r4-patient-example-a-tabs.json": (
        {}, RecordKey("CLINIC", "0.1.2.3.4.5.6.7", "654321"), Demographics(
            identifiers=(Identifier("654321", "0.1.2.3.4.5.6.7", "MR"),),
            names=(PersonName("Donald", ("Duck",), use="official"),), birth_date="1960-01-01",
            sex="male", phones=(Telecom("phone", "666-1122", "home"),), active=True)),
    # No token: "Burgers University Medical Centre" is a CLINIC alias. The second identifier
    # has no value and is skipped; the BSN has no type and keys the record.
    "lfh-fhir/r4-patient-example-f001-pieter.json": (
        {}, RecordKey("CLINIC", "2.16.840.1.113883.2.4.6.3", "738472983"), Demographics(
            identifiers=(Identifier("738472983", "2.16.840.1.113883.2.4.6.3", ""),),
            names=(PersonName("van de Heuvel", ("Pieter",), suffix="MSc", use="usual"),),
            birth_date="1944-11-17", sex="male",
            addresses=(Address(("Van Egmondkade 23",), "Amsterdam", "", "1024 RJ", "NLD", "home"),),
            phones=(Telecom("phone", "0648352638", "mobile"),),
            emails=(Telecom("email", "p.heuvel@gmail.com", "home"),), deceased=False, active=True)),
    # The LAB client; "AUMC" is a LAB alias. The duplicated BSN identifier is stored once.
    "lfh-fhir/r4-patient-example-f201-roel.json": (
        {"token": LAB_TOKEN}, RecordKey("LAB", "2.16.840.1.113883.2.4.6.3", "123456789"), Demographics(
            identifiers=(Identifier("123456789", "2.16.840.1.113883.2.4.6.3", ""),),
            names=(PersonName("Bor", ("Roelof Olaf",), prefix="Drs.", suffix="PDEng.", use="official"),),
            birth_date="1960-03-13", sex="male",
            addresses=(Address(("Bos en Lommerplein 280",), "Amsterdam", "", "1055RW", "NLD", "home"),),
            phones=(Telecom("phone", "+31612345678", "mobile"), Telecom("phone", "+31201234567", "home")),
            deceased=False, active=True)),
    "lfh-fhir/r4-patient-example-infant-twin-1.json": (
        {"token": CLINIC_TOKEN},
        RecordKey("CLINIC", "http://coruscanthealth.org/main-hospital/patient-identifier", "MRN7465737865"),
        Demographics(
            identifiers=(Identifier("MRN7465737865",
                                    "http://coruscanthealth.org/main-hospital/patient-identifier", "MR"),
                         Identifier("7465737865", "http://new-republic.gov/galactic-citizen-identifier")),
            names=(PersonName("Solo", ("Jaina",), use="official"),), birth_date="2017-05-15",
            sex="female", mothers_maiden_name="Organa")),
    "lfh-fhir/r4-patient-example-infant-twin-2.json": (
        {"token": CLINIC_TOKEN},
        RecordKey("CLINIC", "http://coruscanthealth.org/main-hospital/patient-identifier", "MRN7465676978"),
        Demographics(
            identifiers=(Identifier("MRN7465676978",
                                    "http://coruscanthealth.org/main-hospital/patient-identifier", "MR"),
                         Identifier("7465676978", "http://new-republic.gov/galactic-citizen-identifier")),
            names=(PersonName("Solo", ("Jacen",), use="official"),), birth_date="2017-05-15",
            sex="male", mothers_maiden_name="Organa")),
    # A UTF-8 byte-order mark is dropped; "http:/example.org/fhir/ids" is a syntactically valid
    # URI (scheme http, path /example.org/...) and becomes the authority as it is.
    "ms-fhir-server/r4-patient-minimal-bom.json": (
        {"token": CLINIC_TOKEN}, RecordKey("CLINIC", "http:/example.org/fhir/ids", "234234"), Demographics(
            identifiers=(Identifier("234234", "http:/example.org/fhir/ids", ""),),
            names=(PersonName("Chalmers", ("Peter", "James"), use="official"),),
            birth_date="1974-12-25", sex="male", active=True)),
}

#: file -> (request options, status, issue type, expression of the first issue)
REFUSED: dict[str, tuple[dict[str, str], int, str, str]] = {
    "fhir-resources/r4b-patient-with-ext.json": (
        {"token": CLINIC_TOKEN, "version": "4.3"}, 422, "not-supported", "Patient.modifierExtension[0]"),
    "fhirpath-js/r4-patient-container-example.json": (
        {"token": CLINIC_TOKEN}, 422, "required", "Patient.identifier"),
    "fhirpath-js/r4-patient-example-2.json": (
        {"token": CLINIC_TOKEN}, 400, "structure",
        "Patient.communication[0]._preferred.extension[0]._valueString"),
    "fhirpath-js/r4-patient-example-3.json": ({"token": CLINIC_TOKEN}, 422, "required", "Patient.identifier"),
    "fhirpath-js/r5-patient-name-extensions.json": (
        {"token": CLINIC_TOKEN, "version": "5.0"}, 422, "required", "Patient.identifier"),
    "lfh-fhir/r4-invalid-patient-empty-given.json": (
        {"token": CLINIC_TOKEN}, 400, "value", "Patient.name[0].given[0]"),
    "lfh-fhir/r4-patient-ampersand-in-family.json": (
        {"token": CLINIC_TOKEN}, 422, "required", "Patient.identifier"),
    "lfh-fhir/r4-patient-example-infant-mom.json": (
        {"token": CLINIC_TOKEN}, 422, "required", "Patient.identifier"),
    # The CLINIC client may not file a record under LAB ("AUMC"): 403.
    "lfh-fhir/r4-patient-example-f201-roel.json": (
        {"token": CLINIC_TOKEN}, 403, "forbidden", "Patient.managingOrganization"),
    "ms-fhir-server/r4-patient-missing-resourcetype.json": (
        {"token": CLINIC_TOKEN}, 400, "invalid", "resourceType"),
    "ms-fhir-server/r4-patient-normative-example.json": (
        {"token": CLINIC_TOKEN}, 400, "value", "Patient.meta.lastUpdated"),
    "ms-fhir-server/r4-patient-unknown-elements.json": (
        {"token": CLINIC_TOKEN}, 400, "structure", "Patient.name1"),
    "fhirpath-js/r4-patient-bundle-searchset.json": (
        {"token": CLINIC_TOKEN, "to": "/fhir"}, 400, "not-supported", "Bundle.type"),
}

#: Batch Bundles from the Microsoft HL7v2-to-FHIR converter, POSTed to the base.
BATCHES: dict[str, tuple[int, str, str]] = {
    # Patient entry index -> its status, issue type/expression when refused
    "ms-fhir-converter/ADT-A01-01-expected.json": (201, "", ""),
    "ms-fhir-converter/ADT01-23-expected.json": (400, "invariant", "resource.telecom[0].system"),
    # telecom[0] is {"use": "HOME", "system": "JP:1234567"}: two invalid codes, system first.
    "ms-fhir-converter/ADT04-23-expected.json": (400, "code-invalid", "resource.telecom[0].system"),
}


def test_every_corpus_file_has_a_decided_outcome() -> None:
    files = {str(p.relative_to(FHIR_CORPUS)) for p in FHIR_CORPUS.rglob("*.json")}
    decided = set(ACCEPTED) | set(REFUSED) | set(BATCHES)
    assert files == decided


def _post(client: Any, name: str, options: dict[str, str]) -> Any:
    extra = {"Content-Type": f"application/fhir+json; fhirVersion={options['version']}"} \
        if "version" in options else {}
    return client.post(options.get("to", "/fhir/Patient"), content=corpus(name),
                       headers={**headers(options.get("token")), **extra})


def _secured(options: dict[str, str]) -> bool:
    return "token" in options


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_corpus_resource(name: str, database_url: str, tmp_path: Path) -> None:
    options, key, expected = ACCEPTED[name]
    with fhir_app(database_url, tmp_path, clients=_secured(options)) as (client, runtime):
        response = _post(client, name, options)
        assert response.status_code == 201, response.text
        stored = runtime.search.record(response.json()["id"])
        assert stored is not None
        assert stored.record.key == key
        assert stored.record.demographics == expected
        assert response.headers["ETag"] == 'W/"1"'
        read = client.get(f"/fhir/Patient/{stored.record.id}", headers=headers(options.get("token")))
        assert read.status_code == 200 and read.json() == response.json()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_corpus_resource(name: str, database_url: str, tmp_path: Path) -> None:
    options, status, code, expression = REFUSED[name]
    with fhir_app(database_url, tmp_path, clients=_secured(options)) as (client, runtime):
        response = _post(client, name, options)
        assert response.status_code == status, response.text
        found = issue(response)
        assert (found["code"], found["expression"]) == (code, [expression])
        assert record_rows(runtime) == 0


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_converter_batch_bundle(name: str, database_url: str, tmp_path: Path) -> None:
    status, code, expression = BATCHES[name]
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        response = client.post("/fhir", content=corpus(name), headers=headers(CLINIC_TOKEN))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["type"] == "batch-response"
        sent = _entries(name)
        assert len(answer["entry"]) == len(sent)
        for number, (kind, entry) in enumerate(zip(sent, answer["entry"], strict=True)):
            if kind != "Patient":  # MessageHeader, Organization, Coverage, ...: not kept here
                assert entry["response"]["status"] == "404 Not Found"
                outcome = entry["response"]["outcome"]["issue"][0]
                assert outcome["expression"] == [f"Bundle.entry[{number}].request.url"]
                continue
            assert entry["response"]["status"].startswith(str(status))
            if status == 201:
                assert entry["resource"]["id"] == entry["response"]["location"].split("/")[-3]
            else:
                outcome = entry["response"]["outcome"]["issue"][0]
                assert outcome["code"] == code
                assert outcome["expression"] == [f"Bundle.entry[{number}].{expression}"]
        assert record_rows(runtime) == (1 if status == 201 else 0)


def test_twins_stay_two_patients(database_url: str, tmp_path: Path) -> None:
    """Same mother, birth date and family name, different identifiers: never one patient."""
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        twins = [corpus(f"lfh-fhir/r4-patient-example-infant-twin-{n}.json") for n in (1, 2)]
        ids = [client.post("/fhir/Patient", content=twin, headers=headers(CLINIC_TOKEN)).json()["id"]
               for twin in twins]
        records = [runtime.search.record(i) for i in ids]
        assert all(r is not None for r in records)
        assert len({r.record.patient_id for r in records if r is not None}) == 2


def test_converter_patient_demographics(database_url: str, tmp_path: Path) -> None:
    """The converted ADT^A01 Patient: PUT with the converter's id, facility from the client."""
    name = "ms-fhir-converter/ADT-A01-01-expected.json"
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        client.post("/fhir", content=corpus(name), headers=headers(CLINIC_TOKEN))
        stored = runtime.search.record("9e909e52-61a1-be50-1878-a12ef8c36346")
        assert stored is not None
        record = stored.record
        demo = record.demographics
        # No identifier of the clinic's own authority: the MR of the alphabetically first
        # authority keys the record, whatever the order of the identifiers (mpi.keys).
        assert record.key == RecordKey("CLINIC", "1.3.6.1.4.1.44750.1.2.2", "DB123")
        assert [n.family for n in demo.names] == ["EVERYMAN", "Josh", "elbert", "RADIANT", "Jack"]
        assert demo.names[0] == PersonName("EVERYMAN", ("ADAM", "A", "Addsm"), "Dr.", "III MD PF", "usual")
        assert demo.mothers_maiden_name == "SMITH--Angela--L"
        assert (demo.deceased, demo.deceased_at) == (True, "2008-08-25T15:31:30+05:30")
        assert demo.ssn == "123456789"  # the first identifier typed SS (us-ssn ones come later)
        assert Identifier("123456789", "http://example.com/v2-to-fhir-converter/Identifier/USSSA",
                          "SS") in demo.identifiers
        assert [e.value for e in demo.emails] == ["89898989", "8484"]
        assert len(demo.phones) == 6


def _entries(name: str) -> list[str]:
    import json

    data = json.loads((FHIR_CORPUS / name).read_bytes().decode("utf-8-sig"))
    return [e["resource"]["resourceType"] for e in data["entry"]]
