"""``route explain`` of a FHIR file answers what the live API answers: the same status and the
same OperationOutcome expressions, for a Patient and for every entry of a Bundle.

Each input is explained first (nothing is kept), then posted to the real API on the same
database, and the two answers are compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.bootstrap import Runtime, explain_file
from tests.integration.fhir_harness import FHIR_JSON, body, fhir_app, headers, patient

ORG = {"display": "Burgers University Medical Centre"}  # a CLINIC alias in the test rules
SYSTEM = "http://clinic.example.org/mrn"
Answer = tuple[int, list[str], list[tuple[int, list[str]]]]


def clinic_patient(mrn: str, **elements: Any) -> dict[str, Any]:
    return patient(mrn, managingOrganization=ORG, **elements)


def entry(method: str, url: str, resource: dict[str, Any] | None = None, **request: str) -> dict[str, Any]:
    found: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        found["resource"] = resource
    return found


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def inputs(existing: str) -> dict[str, tuple[str, bytes]]:
    """Name -> (API path, body). ``existing`` is the id of a stored Patient (version 1)."""
    stored = clinic_patient("E-1", id=existing)
    cases: dict[str, tuple[str, dict[str, Any] | bytes]] = {
        "patient": ("/fhir/Patient", clinic_patient("P-1")),
        "patient, unknown element": ("/fhir/Patient", clinic_patient("P-2", name1=[{"family": "X"}])),
        "patient, no facility": ("/fhir/Patient", patient("P-3")),
        "patient, bad codes": ("/fhir/Patient", clinic_patient("P-4", gender="m",
                                                               telecom=[{"system": "tel", "value": "1"}])),
        "patient, duplicate keys": ("/fhir/Patient", body(clinic_patient("P-5")).replace(
            b'"gender": "male"', b'"gender": "male", "gender": "female"')),
        "batch of every kind of entry": ("/fhir", bundle(
            "batch",
            entry("POST", "Patient", clinic_patient("B-1")),
            entry("POST", f"Patient?identifier={SYSTEM}|B-2", clinic_patient("B-2")),
            entry("PUT", f"Patient/{existing}", stored, ifMatch='W/"9"'),
            entry("PUT", f"Patient/{existing}", stored, ifMatch="version one"),
            entry("PUT", f"Patient/{existing}", clinic_patient("E-1", id=existing, gender="female"),
                  ifMatch='W/"1"'),
            entry("DELETE", f"Patient/{existing}"),
            entry("GET", f"Patient/{existing}"),
            entry("GET", f"Patient?identifier={SYSTEM}|E-1"),
            entry("POST", "Observation", {"resourceType": "Observation", "status": "final",
                                          "code": {"text": "x"}}),
            entry("POST", "Patient", clinic_patient("B-3"), ifNoneExist=f"identifier={SYSTEM}|E-1"),
            entry("POST", "Patient", clinic_patient("B-4"), ifNoneExist="name=Chalmers"),
            entry("PUT", "Patient/other-id", clinic_patient("B-5", id="not-the-same")),
            entry("POST", "Patient", clinic_patient("B-6", birthDate="1974-13-40")))),
        "transaction refused at an If-Match": ("/fhir", bundle(
            "transaction",
            entry("POST", "Patient", clinic_patient("T-1")),
            entry("PUT", f"Patient/{existing}", stored, ifMatch='W/"7"'))),
        "transaction with a conditional url": ("/fhir", bundle(
            "transaction", entry("PUT", f"Patient?identifier={SYSTEM}|E-1", stored))),
        "transaction with a DELETE": ("/fhir", bundle(
            "transaction", entry("DELETE", f"Patient/{existing}"))),
        "transaction accepted": ("/fhir", bundle(
            "transaction",
            entry("POST", "Patient", clinic_patient("T-2")),
            entry("PUT", f"Patient/{existing}", clinic_patient("E-1", id=existing, gender="other"),
                  ifMatch='W/"1"'))),
        "bundle of another type": ("/fhir", bundle("collection", entry("POST", "Patient"))),
    }
    return {name: (path, content if isinstance(content, bytes) else json.dumps(content).encode())
            for name, (path, content) in cases.items()}


def live(response: Any) -> Answer:
    data = response.json()
    if data.get("resourceType") == "OperationOutcome":
        return response.status_code, [e for i in data["issue"] for e in i["expression"]], []
    entries = [(int(e["response"]["status"].split()[0]),
                [x for i in e["response"].get("outcome", {}).get("issue", ()) for x in i["expression"]])
               for e in data.get("entry", ())] if data.get("resourceType") == "Bundle" else []
    return response.status_code, [], entries


def explained(lines: list[str]) -> Answer:
    status, issues, entries = 0, [], []
    for line in lines:
        if line.startswith("entry "):
            entries.append((int(line.split(": ", 1)[1].split()[0]), []))
        elif line.startswith("  refused at "):
            entries[-1][1].append(line.removeprefix("  refused at ").split(": ", 1)[0])
        elif line.startswith("refused at "):
            issues.append(line.removeprefix("refused at ").split(": ", 1)[0])
        elif line.startswith("HTTP answer: "):
            status = int(line.split()[2])
    return status, issues, entries


def test_explain_and_the_api_give_the_same_statuses_and_expressions(database_url: str,
                                                                    tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        first = client.post("/fhir/Patient", content=body(clinic_patient("E-1")), headers=headers())
        assert first.status_code == 201
        existing = first.json()["id"]
        answers: dict[str, Answer] = {}
        for name, (path, content) in inputs(existing).items():
            lines, accepted = explain_file(runtime, content)
            response = client.post(path, content=content, headers={"Content-Type": FHIR_JSON})
            expected = live(response)
            assert explained(lines) == expected, (name, lines, response.text)
            assert accepted == (expected[0] < 400 and all(s < 400 for s, _ in expected[2])), name
            answers[name] = expected
            _undo(runtime, existing)
    # The inputs do reach every kind of answer.
    assert answers["transaction accepted"][0] == 200 and answers["patient"][0] == 201
    assert answers["transaction refused at an If-Match"][:2] == (412, ["Bundle.entry[1].request.ifMatch"])
    assert [status for status, _ in answers["batch of every kind of entry"][2]] == [
        201, 400, 412, 400, 200, 405, 405, 405, 404, 200, 400, 400, 400]


def _undo(runtime: Runtime, existing: str) -> None:
    """Put the stored Patient back at version 1 so that every input meets the same state."""
    from sqlalchemy import text

    with runtime.database.begin() as conn:
        conn.execute(text("DELETE FROM mpi_identifiers WHERE record_id <> :id"), {"id": existing})
        conn.execute(text("DELETE FROM mpi_source_records WHERE id <> :id"), {"id": existing})
        conn.execute(text("UPDATE mpi_source_records SET version = 1 WHERE id = :id"), {"id": existing})


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_explain_reports_what_each_entry_would_do(kind: str, database_url: str, tmp_path: Path) -> None:
    content = json.dumps(bundle(kind, entry("POST", "Patient", clinic_patient("W-1")))).encode()
    with fhir_app(database_url, tmp_path) as (_, runtime):
        lines, accepted = explain_file(runtime, content)
    assert accepted
    assert "entry 0: 201 Created" in lines
    assert "  facility: Patient.managingOrganization names facility CLINIC (tier 2)" in lines
    assert "  would save record CLINIC:CLN|W-1 (whole record replaced)" in lines
