"""Shared set-up of the FHIR integration tests: routing rules and a real app on a real database.

The app is the one ``engine.bootstrap.http_app`` builds for ``portalbridge serve``, on a
runtime from ``build_runtime`` (real store, real group committer, started) for the
``database_url`` under test. Requests go through FastAPI's TestClient.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from engine.bootstrap import Runtime, build_runtime, http_app
from engine.config import Settings
from engine.store.tables import outbox
from mpi.tables import source_records
from tests.conftest import FHIR_CORPUS, TEST_RULES_YAML
from tests.fakes import TEST_SECRET_KEY

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx is what the project ships.
    warnings.simplefilter("ignore", UserWarning)  # StarletteDeprecationWarning
    from fastapi.testclient import TestClient

CLINIC_TOKEN = "clinic-token-0123456789abcdef"
LAB_TOKEN = "lab-token-0123456789abcdef"
FHIR_JSON = "application/fhir+json"
#: The GHH medical record number system as FHIR senders write it.
GHH_MRN_SYSTEM = "http://ghh.example.org/fhir/mrn"


def rules_yaml(*, clients: bool = False, extra: dict[str, Any] | None = None) -> str:
    """The shared test rules, plus FHIR names for the corpus, and FHIR clients or else
    anonymous requests allowed (the demo mode, in which a resource names its facility)."""
    rules = yaml.safe_load(TEST_RULES_YAML)
    aliases = {"CLINIC": ["ACME Healthcare, Inc", "Burgers University Medical Centre"],
               "LAB": ["AUMC"]}
    for facility in rules["facilities"]:
        facility["aliases"] = [*facility.get("aliases", []), *aliases.get(facility["code"], [])]
    rules["authorities"] = [{"code": "GHH", "aliases": [GHH_MRN_SYSTEM, "urn:oid:2.16.840.1.122848.1.30"]},
                            {"code": "CLN", "aliases": ["http://clinic.example.org/mrn"]}]
    if clients:
        rules["fhir"] = {"clients": [
            {"name": "clinic-emr", "facility": "CLINIC", "token_sha256": _sha(CLINIC_TOKEN)},
            {"name": "lab-system", "facility": "LAB", "token_sha256": _sha(LAB_TOKEN)}]}
    else:
        rules["fhir"] = {"allow_anonymous": True}
    extra = dict(extra or {})
    rules["fhir"].update(extra.pop("fhir", {}))
    rules.update(extra)
    return yaml.safe_dump(rules, sort_keys=False)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextmanager
def fhir_app(database_url: str, folder: Path, *, clients: bool = False,
             extra: dict[str, Any] | None = None) -> Iterator[tuple[TestClient, Runtime]]:
    """A TestClient on the real app, with the group committer running."""
    config = folder / ("routing-clients.yaml" if clients else "routing.yaml")
    config.write_text(rules_yaml(clients=clients, extra=extra), encoding="utf-8")
    runtime = build_runtime(Settings(
        secret_key=TEST_SECRET_KEY, database_url=database_url, config_path=config), migrate_sqlite=False)
    runtime.committer.start()
    try:
        with TestClient(http_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.committer.stop()
        runtime.database.dispose()


def headers(token: str | None = None, **more: str) -> dict[str, str]:
    result = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token:
        result["Authorization"] = f"Bearer {token}"
    result.update({k.replace("_", "-"): v for k, v in more.items()})
    return result


def corpus(name: str) -> bytes:
    return (FHIR_CORPUS / name).read_bytes()


def patient(mrn: str, *, system: str = "http://clinic.example.org/mrn", family: str = "Chalmers",
            given: tuple[str, ...] = ("Peter", "James"), **elements: Any) -> dict[str, Any]:
    """A small valid Patient keyed by ``system|mrn``."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                             "code": "MR"}]}, "system": system, "value": mrn}],
        "name": [{"use": "official", "family": family, "given": list(given)}],
        "gender": "male", "birthDate": "1974-12-25"}
    resource.update(elements)
    return resource


def body(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource).encode()


def count_rows(runtime: Runtime, table: Any, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with runtime.database.connect() as conn:
        return int(conn.execute(query).scalar_one())


def outbox_rows(runtime: Runtime) -> int:
    return count_rows(runtime, outbox, routing_key="mpi.changed")


def record_rows(runtime: Runtime) -> int:
    return count_rows(runtime, source_records)


def issue(response: Any, number: int = 0) -> dict[str, Any]:
    """The n-th issue of an OperationOutcome answer (asserting it is one)."""
    data = response.json()
    assert data["resourceType"] == "OperationOutcome", data
    found = data["issue"][number]
    assert found["diagnostics"] and found["expression"], found
    return dict(found)
