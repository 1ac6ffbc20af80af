"""``portalbridge route explain FILE.json``: FHIR files are explained like HL7 ones, nothing kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bootstrap import build_runtime
from engine.cli import main
from engine.config import Settings
from tests.conftest import FHIR_CORPUS, HL7_CORPUS
from tests.fakes import TEST_SECRET_KEY
from tests.integration.fhir_harness import body, patient, record_rows, rules_yaml


def _explain(path: Path, database_url: str, folder: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = folder / "routing.yaml"
    config.write_text(rules_yaml(), encoding="utf-8")
    monkeypatch.setenv("PORTALBRIDGE_CONFIG", str(config))
    monkeypatch.setenv("PORTALBRIDGE_DATABASE_URL", database_url)
    code = main(["route", "explain", str(path)])
    return code, capsys.readouterr().out


def _records(database_url: str, folder: Path) -> int:
    runtime = build_runtime(Settings(
        secret_key=TEST_SECRET_KEY, database_url=database_url, config_path=folder / "routing.yaml"),
                            migrate_sqlite=False)
    try:
        return record_rows(runtime)
    finally:
        runtime.database.dispose()


def test_a_patient_file_is_explained_and_nothing_is_kept(database_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _explain(FHIR_CORPUS / "lfh-fhir/r4-patient-example-a-tabs.json", database_url,
                         tmp_path, monkeypatch, capsys)
    assert code == 0, out
    assert "read as FHIR R4 Patient" in out
    assert "managingOrganization names facility CLINIC (tier 2)" in out
    assert "would save record CLINIC:0.1.2.3.4.5.6.7|654321" in out
    assert "would create record" in out and "201 Created" in out
    assert "events written to the outbox: 1" in out
    assert _records(database_url, tmp_path) == 0


def test_refusals_are_explained_with_their_expression(database_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _explain(FHIR_CORPUS / "ms-fhir-server/r4-patient-unknown-elements.json", database_url,
                         tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "a UTF-8 byte-order mark was dropped" in out
    assert "refused at Patient.name1: unknown element 'name1'" in out
    assert "HTTP answer: 400 Bad Request" in out
    no_facility = tmp_path / "no-facility.json"
    no_facility.write_bytes(body(patient("X1")))
    code, out = _explain(no_facility, database_url, tmp_path, monkeypatch, capsys)
    assert code == 1 and "refused at Patient.managingOrganization" in out


def test_bundles_are_explained_entry_by_entry(database_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _explain(FHIR_CORPUS / "ms-fhir-converter/ADT04-23-expected.json", database_url,
                         tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "as POST [base] (batch: each entry on its own)" in out
    assert "entry 0: 404 Not Found" in out
    assert "refused at Bundle.entry[4].resource.telecom[0].system" in out


def test_hl7_files_are_still_explained_as_hl7(database_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _explain(HL7_CORPUS / "hapi-hl7v2/adt_a01_v24_doc_example.hl7", database_url, tmp_path,
                      monkeypatch, capsys)
    assert "MSH-10" in out and "FHIR" not in out
