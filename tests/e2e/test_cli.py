"""The CLI as a user runs it: db upgrade, route explain (no side effects), config check."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

from engine.store.database import open_database
from mpi.tables import source_records
from tests.e2e.conftest import E2E, portalbridge
from tests.unit.hl7.hl7_corpus import CORPUS


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PORTALBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'pb.db'}",
            "PORTALBRIDGE_CONFIG": str(E2E / "corpus_rules.yaml"), "PORTALBRIDGE_LOG_LEVEL": "WARNING"}


def count_records(url: str) -> int:
    database = open_database(url)
    with database.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(source_records)).scalar_one())
    database.dispose()
    return count


def test_route_explain_reads_routes_and_predicts_without_storing(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    done = portalbridge("route", "explain", str(CORPUS / "ms-fhir-converter/adt_a01_v28_full.hl7"), env=env)
    out = done.stdout
    assert "dry run against an empty index" in out
    assert "type: ADT^A01 (structure ADT_A01), version 2.8" in out
    assert "control id (MSH-10): MSG00001" in out
    assert "routes[0] (updates) matched ADT^A01 -> upsert_patient" in out
    assert "would upsert record GHH:test1|PATID1234" in out
    assert "new patient" in out and "birth_date: '' -> '1988-08-18'" in out
    assert "acknowledgement: AA" in out
    assert not (tmp_path / "pb.db").exists(), "explain must not create the database"


def test_route_explain_against_an_existing_database_changes_nothing(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    portalbridge("db", "upgrade", env=env)
    done = portalbridge("route", "explain", str(CORPUS / "ms-fhir-converter/adt_a40_v28_merge.hl7"), env=env)
    assert "would merge record NTIER:BCBS|56789 into NTIER:BCBS|12345" in done.stdout
    assert "acknowledgement: none requested" in done.stdout
    assert count_records(env["PORTALBRIDGE_DATABASE_URL"]) == 0


def test_route_explain_of_a_refused_message_exits_1_and_says_why(tmp_path: Path) -> None:
    done = portalbridge("route", "explain", str(CORPUS / "python-hl7/oru_r01_v24_ghh_lab.hl7"),
                        env=sqlite_env(tmp_path), check=False)
    assert done.returncode == 1
    assert "refused at MSH-4: sending facility 'ELAB-3' is not a facility in routing.yaml" in done.stdout
    assert "acknowledgement: AR" in done.stdout


def test_db_upgrade_is_idempotent_and_config_errors_exit_1(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    assert "latest schema revision" in portalbridge("db", "upgrade", env=env).stdout
    assert "latest schema revision" in portalbridge("db", "upgrade", env=env).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("facilities: [{code: A, tier: 1}]\nroutes: [{action: upsrt}]\n")
    done = portalbridge("config", "check", str(bad), env=env, check=False)
    assert done.returncode == 1
    assert "routes[0].action: unknown action 'upsrt'" in done.stderr


def test_serve_refuses_an_invalid_routing_file_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("facilities: [{code: A, tier: 1}]\nroutes: [{action: ignore}]\nsurprise: 1\n")
    done = portalbridge("serve", env={**sqlite_env(tmp_path), "PORTALBRIDGE_CONFIG": str(bad)}, check=False)
    # A command that cannot start answers 2 (`config check` alone answers "invalid" with 1).
    assert done.returncode == 2 and "surprise: unknown key" in done.stderr


def test_fhir_token_prints_a_new_token_and_the_routing_line_that_admits_it(tmp_path: Path) -> None:
    import hashlib

    import yaml

    first = portalbridge("fhir", "token", "clinic-emr", "--facility", "NORTH", env=sqlite_env(tmp_path))
    second = portalbridge("fhir", "token", "clinic-emr", "--facility", "NORTH", env=sqlite_env(tmp_path))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    token, entry = lines[1].strip(), lines[-1].strip()
    assert len(token) >= 40 and token not in second.stdout  # random, new each time
    [client] = yaml.safe_load(entry)
    assert client == {"name": "clinic-emr", "facility": "NORTH",
                      "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
    shipped = (E2E.parents[1] / "routing.yaml").read_text("utf-8")
    config = tmp_path / "routing.yaml"
    config.write_text(shipped + f"    {entry}\n", encoding="utf-8")  # pasted under `clients:`
    check = portalbridge("config", "check", str(config), env=sqlite_env(tmp_path))
    assert check.returncode == 0, check.stderr
