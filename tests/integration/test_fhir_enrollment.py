"""``fhir.enroll``: a FHIR create of a patient with an e-mail writes an enrollment request in
the same transaction; an update does not, nor a create of a patient without one."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from engine.store.tables import outbox
from tests.integration.fhir_harness import body, fhir_app, headers, patient

EMAIL = [{"system": "email", "value": "peter@example.org"}]
CLINIC = {"display": "CLINIC"}


def _requests(runtime: object) -> list[dict[str, object]]:
    with runtime.database.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(outbox.c.data).where(outbox.c.routing_key == "enrollment.request"))
        return [orjson.loads(r[0]) for r in rows]


def test_fhir_creates_enroll_when_the_rule_holds(database_url: str, tmp_path: object) -> None:
    extra = {"fhir": {"enroll": {"requires": ["email"], "enrolling_user": "FHIR-FEED",
                                 "facilities": ["CLINIC"]}}}
    with fhir_app(database_url, tmp_path, extra=extra) as (client, runtime):  # type: ignore[arg-type]
        first = patient("F-1", telecom=EMAIL, managingOrganization=CLINIC)
        created = client.post("/fhir/Patient", content=body(first), headers=headers())
        assert created.status_code == 201, created.text
        second = patient("F-2", managingOrganization=CLINIC)
        assert client.post("/fhir/Patient", content=body(second), headers=headers()).status_code == 201
        record_id = created.json()["id"]
        updated = client.put(f"/fhir/Patient/{record_id}", headers=headers(),
                             content=body(patient("F-1", telecom=EMAIL, id=record_id, gender="other",
                                                  managingOrganization=CLINIC)))
        assert updated.status_code == 200, updated.text
        [request] = _requests(runtime)
    assert request["identifier"] == "CLN|F-1" and request["enrolling_user"] == "FHIR-FEED"
    assert request["email"] == "peter@example.org"
