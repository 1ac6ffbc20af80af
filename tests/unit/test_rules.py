"""routing.yaml: validation with key paths, unknown keys, duplicate keys, cross references."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import ConfigurationError
from engine.rules import Action, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[2]

VALID = """
version: 1
facilities:
  - {code: NORTH, tier: 1}
  - {code: EAST, tier: 2, aliases: [EAST-CLINIC]}
senders:
  - {application: "*", facility: NORTH}
routes:
  - {match: {message_type: ADT, trigger: [A01, A08]}, action: upsert_patient}
  - {match: {message_type: ADT}, action: ignore}
  - {match: {message_type: "*"}, action: reject, reason: ADT only}
"""


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(text)
    return caught.value.problems


def test_a_valid_file_becomes_frozen_models() -> None:
    rules = parse_rules(VALID)
    assert rules.routes[0].action is Action.UPSERT_PATIENT
    assert rules.routes[0].match.trigger == ("A01", "A08")
    assert rules.facility("east-clinic") is rules.facilities[1]
    assert rules.tier_of("EAST") == 2
    with pytest.raises(Exception, match="frozen"):
        rules.routes[0].action = Action.IGNORE  # type: ignore[misc]


def test_an_unknown_action_is_named_with_its_key_path() -> None:
    text = VALID.replace("action: ignore}", "action: upsrt}")
    [problem] = problems_of(text)
    assert problem.startswith("routes[1].action: unknown action 'upsrt'")
    assert "upsert_patient" in problem


def test_an_unknown_key_is_an_error_not_ignored() -> None:
    text = VALID.replace("{code: NORTH, tier: 1}", "{code: NORTH, tier: 1, teir: 3}")
    assert problems_of(text) == ("facilities[0].teir: unknown key",)


def test_every_problem_is_reported_at_once() -> None:
    text = (VALID.replace("tier: 2,", "tier: -1,")
            .replace("facility: NORTH}", "facility: SOUTH}")
            .replace("reason: ADT only", "reason: ''"))
    problems = problems_of(text)
    assert any(p.startswith("facilities[1].tier:") for p in problems)
    assert any("routes[2]" in p and "reason" in p for p in problems)


def test_cross_references_are_checked() -> None:
    text = VALID.replace("facility: NORTH}", "facility: SOUTH}")
    assert problems_of(text) == ("senders[0].facility: unknown facility 'SOUTH'",)


def test_a_facility_alias_may_not_repeat_another_facility() -> None:
    text = VALID.replace("aliases: [EAST-CLINIC]", "aliases: [north]")
    assert problems_of(text) == ("facilities[1]: 'north' is already used by facilities[0]",)


def test_duplicate_yaml_keys_are_refused() -> None:
    text = VALID.replace("version: 1\n", "version: 1\nversion: 1\n")
    with pytest.raises(ConfigurationError, match="duplicate key 'version'"):
        parse_rules(text)


def test_missing_required_parts_and_bad_yaml() -> None:
    assert "routes: required key is missing" in problems_of("facilities: [{code: A, tier: 1}]")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        parse_rules("facilities: [")
    with pytest.raises(ConfigurationError, match="mapping"):
        parse_rules("- just a list")


def test_authorities_unify_namespaces_oids_and_fhir_systems() -> None:
    rules = parse_rules(VALID + """
authorities:
  - {code: NGH, aliases: ["2.16.840.1.113883.19.5", "http://ngh.example/mrn"]}
""")
    assert rules.canonical_authority("", "2.16.840.1.113883.19.5") == "NGH"
    assert rules.canonical_authority("urn:oid:2.16.840.1.113883.19.5") == "NGH"
    assert rules.canonical_authority("http://ngh.example/mrn") == "NGH"
    assert rules.canonical_authority("ngh") == "NGH"
    assert rules.canonical_authority("urn:oid:1.2.3") == "1.2.3"
    assert rules.canonical_authority("", "") == ""


def test_the_shipped_routing_file_is_valid_and_the_packaged_copy_matches_it() -> None:
    shipped = ROOT / "routing.yaml"
    load_rules(shipped)
    assert (ROOT / "engine" / "samples" / "routing.yaml").read_text() == shipped.read_text()


def test_config_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    assert main(["config", "check", str(good)]) == 0
    assert "valid (2 facilities, 1 senders, 3 routes, 74 notification templates in 2 locales)" \
        in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("action: ignore}", "action: upsrt}"))
    assert main(["config", "check", str(bad)]) == 1
    assert "error: routes[1].action: unknown action 'upsrt'" in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
