"""Reads of the patient index are audited, and ``GET /workbench/audit`` reads the log back."""

from __future__ import annotations

import json
from pathlib import Path

from engine.staff import Role
from tests.integration.engine_harness import staff_headers
from tests.integration.fhir_harness import CLINIC_TOKEN, body, fhir_app, headers, patient


def test_mpi_reads_are_audited_without_the_values_searched(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path, clients=True) as (client, runtime):
        created = client.post("/fhir/Patient", content=body(patient("A7-5551234")),
                              headers=headers(CLINIC_TOKEN))
        assert created.status_code == 201, created.text
        reader = staff_headers(runtime, Role.DIRECT_ENROLLMENT_USER)
        found = client.get("/mpi/patients", params={"identifier": "CLN|A7-5551234"}, headers=reader)
        [found_patient] = found.json()["patients"]
        patient_id = found_patient["id"]
        assert client.get(f"/mpi/patients/{patient_id}", headers=reader).status_code == 200
        assert client.get("/mpi/patients", params={"family": "Nobody", "birthdate": "1970"},
                          headers=reader).json()["total"] == 0

        manager = staff_headers(runtime, Role.MEMBER_ACCOUNT_MANAGER)
        entries = client.get("/workbench/audit", params={"action": "mpi.*"}, headers=manager).json()
        assert entries["count"] == 3
        empty, read, search = entries["entries"]
        assert (read["action"], read["patient_id"], read["outcome"]) == ("mpi.read", patient_id, "success")
        assert read["actor"].startswith("staff:tester-")
        assert search["detail"] == {"by": "identifier", "results": "1", "patient_ids": patient_id}
        assert search["patient_id"] == patient_id
        assert empty["detail"] == {"by": "name", "results": "0", "patient_ids": ""}
        logged = json.dumps(entries)
        assert "5551234" not in logged and "Nobody" not in logged and "Chalmers" not in logged


def test_audit_query_parameters(database_url: str, tmp_path: Path) -> None:
    with fhir_app(database_url, tmp_path) as (client, runtime):
        admin = staff_headers(runtime, Role.ADMINISTRATOR)
        for _ in range(3):
            client.get("/mpi/patients/nobody", headers=admin)  # 404: nothing served, nothing audited
            client.get("/mpi/patients", params={"identifier": "X|1"}, headers=admin)

        def audit(**params: str) -> list[dict[str, object]]:
            reply = client.get("/workbench/audit", params=params, headers=admin)
            assert reply.status_code == 200, reply.text
            entries: list[dict[str, object]] = reply.json()["entries"]
            return entries

        assert len(audit()) == 3
        assert len(audit(limit="2")) == 2
        assert len(audit(since="1h")) == 3 and audit(since="2999-01-01T00:00:00Z") == []
        actor = str(audit()[0]["actor"])
        assert len(audit(actor=actor)) == 3 and audit(actor="staff:someone-else") == []
        assert len(audit(actor="staff:*", action="mpi.search")) == 3
        assert audit(member="m-1") == []
        bad_since = client.get("/workbench/audit", params={"since": "last week"}, headers=admin)
        assert bad_since.status_code == 400 and "neither a duration" in bad_since.json()["detail"]
        for limit in ("0", "1001"):
            reply = client.get("/workbench/audit", params={"limit": limit}, headers=admin)
            assert reply.status_code == 422
