"""Decided outcomes for awkward bodies and requests, through the HTTP API.

unknown elements -> 400 (structure), duplicate JSON keys -> 400 naming the key, a UTF-8 BOM ->
accepted, a bare null in a primitive array -> 400 (a null placeholder for an ``_element``
is fine), missing or wrong resourceType -> 400, an empty string -> 400, a body over
``fhir.max_body_bytes`` -> 413, a media type other than FHIR JSON -> 415.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tests.integration.fhir_harness import body, fhir_app, headers, issue, patient, record_rows

ORG = {"display": "Burgers University Medical Centre"}  # a CLINIC alias in the test rules


def _post(client: object, content: bytes, **more: str) -> object:
    return client.post("/fhir/Patient", content=content, headers=headers(**more))  # type: ignore[attr-defined]


def test_duplicate_keys_are_refused_and_named(database_url: str, tmp_path: Path) -> None:
    text = body(patient("D1", managingOrganization=ORG)).decode()
    with fhir_app(database_url, tmp_path) as (client, runtime):
        top = _post(client, text.replace('"gender": "male"', '"gender": "male", "gender": "female"').encode())
        assert top.status_code == 400 and issue(top)["expression"] == ["Patient.gender"]
        assert "duplicate JSON key 'gender'" in issue(top)["diagnostics"]
        nested = _post(client, text.replace('"family": "Chalmers"', '"family": "A", "family": "B"').encode())
        assert issue(nested)["expression"] == ["Patient.name[0].family"]
        both = text.replace('"gender": "male"', '"gender": "male", "gender": "female"')
        both = both.replace('"family": "Chalmers"', '"family": "A", "family": "B"')
        answer = _post(client, both.encode()).json()
        assert [i["expression"] for i in answer["issue"]] == [["Patient.gender"],
                                                              ["Patient.name[0].family"]]
        assert record_rows(runtime) == 0


def test_a_byte_order_mark_is_accepted(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        content = b"\xef\xbb\xbf" + body(patient("B1", managingOrganization=ORG))
        response = client.post("/fhir/Patient", content=content,
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 201


def test_nulls_in_primitive_arrays(database_url: str, tmp_path: Path) -> None:
    placeholder = patient("N1", managingOrganization=ORG)
    placeholder["name"] = [{"use": "maiden", "family": "Windsor", "given": [None, "James"],
                            "_given": [{"extension": [{"url": "https://example.org/syllable-count",
                                                       "valueString": "five"}]}]}]
    bare = patient("N2", managingOrganization=ORG)
    bare["name"][0]["given"] = ["Peter", None]
    with fhir_app(database_url, tmp_path) as (client, runtime):
        accepted = _post(client, body(placeholder))
        assert accepted.status_code == 201, accepted.text
        stored = runtime.search.record(accepted.json()["id"])
        assert stored is not None and stored.record.demographics.names[0].given == ("James",)
        refused = _post(client, body(bare))
        assert refused.status_code == 400
        assert issue(refused)["expression"] == ["Patient.name[0].given[1]"]


def test_resource_type_must_be_present_and_right(database_url: str, tmp_path: Path) -> None:
    resource = patient("R1", managingOrganization=ORG)
    with fhir_app(database_url, tmp_path) as (client, _):
        missing = _post(client, body({k: v for k, v in resource.items() if k != "resourceType"}))
        assert missing.status_code == 400
        assert (issue(missing)["code"], issue(missing)["expression"]) == ("required", ["resourceType"])
        wrong = _post(client, body({**resource, "resourceType": "Observation"}))
        assert wrong.status_code == 400 and issue(wrong)["expression"] == ["resourceType"]
        to_base = client.post("/fhir", content=body(resource), headers=headers())
        assert to_base.status_code == 400 and "Bundle" in issue(to_base)["diagnostics"]


def test_bodies_that_are_not_fhir_json(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        for content in (b"{not json", b"[]", b'{"resourceType": "Patient", "multipleBirthInteger": NaN}',
                        '{"resourceType": "Patient"}'.encode("utf-16"), b'{"resourceType": "Pat\xe9"}'):
            response = _post(client, content)
            assert response.status_code == 400, content
            assert issue(response)["code"] == "structure"
        empty = _post(client, body({**patient("E1", managingOrganization=ORG), "birthDate": ""}))
        assert empty.status_code == 400 and issue(empty)["expression"] == ["Patient.birthDate"]
        null = _post(client, body({**patient("E4", managingOrganization=ORG), "birthDate": None}))
        assert null.status_code == 400 and issue(null)["expression"] == ["Patient.birthDate"]
        nested_unknown = patient("E2", managingOrganization=ORG)
        nested_unknown["name"][0]["famly"] = "Typo"
        unknown = _post(client, body(nested_unknown))
        assert unknown.status_code == 400 and issue(unknown)["expression"] == ["Patient.name[0].famly"]
        bad_code = _post(client, body({**patient("E3", managingOrganization=ORG), "gender": "M"}))
        assert bad_code.status_code == 400
        found = issue(bad_code)
        assert (found["code"], found["expression"]) == ("code-invalid", ["Patient.gender"])


def test_media_types(database_url: str, tmp_path: Path) -> None:
    content = body(patient("M1", managingOrganization=ORG))
    with fhir_app(database_url, tmp_path) as (client, _):
        for media_type in ("text/plain", "application/fhir+xml", "application/x-www-form-urlencoded",
                           "application/fhir+json; fhirVersion=3.0",
                           "application/fhir+json; charset=iso-8859-1"):
            response = client.post("/fhir/Patient", content=content, headers={"Content-Type": media_type})
            assert response.status_code == 415, media_type
            assert issue(response)["expression"] == ["http.Content-Type"]
        no_type = client.post("/fhir/Patient", content=content)
        assert no_type.status_code == 415
        xml_only = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
        assert xml_only.status_code == 200  # metadata is always served as JSON
        refused = client.get("/fhir/Patient/x", headers={"Accept": "application/fhir+xml"})
        assert refused.status_code == 406 and issue(refused)["expression"] == ["http.Accept"]
        assert client.post("/fhir/Patient", content=content,
                           headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 201


def test_fhir_versions(database_url: str, tmp_path: Path) -> None:
    # Patient itself is the same in R4B and R5; Extension.valueInteger64 is new in R5.
    r5_only = patient("V1", managingOrganization=ORG,
                      extension=[{"url": "http://example.org/visits", "valueInteger64": "12"}])
    with fhir_app(database_url, tmp_path) as (client, _):
        as_r4 = _post(client, body(r5_only))
        assert as_r4.status_code == 400
        assert issue(as_r4)["expression"] == ["Patient.extension[0].valueInteger64"]
        as_r5 = client.post("/fhir/Patient", content=body(r5_only),
                            headers={"Content-Type": "application/fhir+json; fhirVersion=5.0"})
        assert as_r5.status_code == 201
        by_profile = {**r5_only, "identifier": [{"system": "urn:oid:1.2.3", "value": "V2"}],
                      "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/Patient|5.0.0"]}}
        assert _post(client, body(by_profile)).status_code == 201


def test_bodies_over_the_limit_are_413(database_url: str, tmp_path: Path) -> None:
    big = patient("Z1", managingOrganization=ORG, text={
        "status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{"x" * 5000}</div>'})
    content = body(big)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 1000):
            yield content[start:start + 1000]

    with fhir_app(database_url, tmp_path, extra={"fhir": {"max_body_bytes": 4096}}) as (client, runtime):
        declared = _post(client, content)
        assert declared.status_code == 413
        assert issue(declared)["code"] == "too-costly"
        streamed = client.post("/fhir/Patient", content=chunks(), headers=headers())  # no Content-Length
        assert streamed.status_code == 413
        assert record_rows(runtime) == 0
        assert _post(client, body(patient("Z2", managingOrganization=ORG))).status_code == 201


def test_unsupported_paths_and_methods(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, _):
        deleted = client.delete("/fhir/Patient/x")
        assert deleted.status_code == 405 and issue(deleted)["code"] == "not-supported"
        other = client.get("/fhir/Observation/1")
        assert other.status_code == 404
        assert json.loads(other.content)["resourceType"] == "OperationOutcome"
