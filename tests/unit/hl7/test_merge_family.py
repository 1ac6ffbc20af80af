"""The merge family (A18, A30, A34, A35, A36, A39, A40), each read the way its HL7 version
defines it; every MRG-1 repetition; a merge is never acknowledged AA while applying nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from engine.routing import Router, RouteRequest
from engine.rules import MERGE_TRIGGERS, Action, load_rules, parse_rules
from mpi.model import Identifier
from tests.conftest import ROOT, TEST_RULES_YAML
from tests.unit.hl7.pipeline import RULES, Pipeline, message


def registered(pipeline: Pipeline, *mrns: str, authority: str = "NGH", kind: str = "MR") -> None:
    """An A04 for each MRN, so that the records exist before a merge."""
    for mrn in mrns:
        ack = pipeline.send(message(f"PID|1||{mrn}^^^{authority}^{kind}||SAMPLE^{mrn}||19800101|F",
                                    trigger="A04", control=f"reg-{mrn}"))
        assert ack.code == "AA"


def merged_into(pipeline: Pipeline, prior: str, survivor: str, authority: str = "NGH") -> bool:
    return (pipeline.record(authority, prior).merged_into
            == pipeline.record(authority, survivor).id)


@pytest.mark.parametrize("rules_text", [
    (ROOT / "routing.yaml").read_text(), (ROOT / "engine/samples/routing.yaml").read_text(),
    TEST_RULES_YAML, (ROOT / "tests/e2e/corpus_rules.yaml").read_text()],
    ids=["routing.yaml", "samples", "conftest", "e2e corpus rules"])
@pytest.mark.parametrize("trigger", sorted(MERGE_TRIGGERS))
def test_the_shipped_routes_send_every_merge_trigger_to_merge_patients(rules_text: str,
                                                                       trigger: str) -> None:
    rules = parse_rules(rules_text)
    facility = rules.facilities[0].code
    decision = Router(rules).route(RouteRequest(sender_application="ADT", sender_facility=(facility,),
                                                message_type="ADT", trigger=trigger))
    assert decision.route.action is Action.MERGE_PATIENTS


@pytest.mark.parametrize(("trigger", "version", "mrg"), [
    ("A18", "2.3", "MRG|200^^^NGH^MR"),  # merge patient information, v2.3
    ("A18", "2.3", "MRG||||200^^^NGH^MR"),  # prior patient ID (external) in MRG-4 only
    ("A30", "2.4", "MRG|200^^^NGH^MR"),  # merge person information
    ("A34", "2.3.1", "MRG|200^^^NGH^MR"),  # patient ID only
    ("A36", "2.5", "MRG|200^^^NGH^MR||ACC-9"),  # patient ID and account number
    ("A40", "2.8", "MRG|200^^^NGH^MR"),  # patient identifier list
])
def test_each_record_merge_retires_the_mrg_record(trigger: str, version: str, mrg: str) -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200")
    ack = pipeline.send(message("PID|1||100^^^NGH^MR||SAMPLE^KEPT||19800101|F", mrg,
                                trigger=trigger, version=version))
    assert ack.code == "AA", ack.text
    assert merged_into(pipeline, "200", "100")
    accounts = trigger in ("A18", "A36")
    assert ("account numbers" in ack.text) is accounts


def test_a35_merges_account_numbers_only_and_says_so() -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200")
    ack = pipeline.send(message("PID|1||100^^^NGH^MR||SAMPLE^RENAMED||19800101|F|||||||||||ACC-1",
                                "MRG|100^^^NGH^MR||ACC-2", trigger="A35", version="2.4"))
    assert ack.code == "AA"
    assert "account numbers" in ack.text and "not kept" in ack.text
    assert pipeline.record("NGH", "100").demographics.names[0].given == ("RENAMED",)
    assert all(r.merged_into is None for r in pipeline.records())


@pytest.mark.parametrize(("version", "pid", "mrg"), [
    # Up to v2.6 A39 merges person-level ids: PID-2 survives, MRG-4 is retired.
    ("2.5", "PID|1|100^^^NGH^PI|||SAMPLE^KEPT||19800101|F", "MRG||||200^^^NGH^PI"),
    # From v2.7 PID-2 and MRG-4 are withdrawn: PID-3 and MRG-1.
    ("2.7", "PID|1||100^^^NGH^PI||SAMPLE^KEPT||19800101|F", "MRG|200^^^NGH^PI"),
])
def test_a39_is_read_as_its_version_defines_it(version: str, pid: str, mrg: str) -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200", kind="PI")
    ack = pipeline.send(message(pid, mrg, trigger="A39", version=version))
    assert ack.code == "AA", ack.text
    assert merged_into(pipeline, "200", "100")


def test_every_mrg_1_repetition_names_the_retired_record() -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "300")
    # The record of this facility is known by the second repetition only.
    ack = pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|299^^^NGH^MR~300^^^NGH^MR",
                                trigger="A40"))
    assert ack.code == "AA", ack.text
    assert merged_into(pipeline, "300", "100")
    assert not any(r.key.mrn == "299" for r in pipeline.records())


def test_an_unknown_prior_is_remembered_under_every_repetition() -> None:
    pipeline = Pipeline()
    registered(pipeline, "100")
    pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|OLD-B^^^NGH^MR~OLD-A^^^NGH^MR", trigger="A40"))
    survivor = pipeline.record("NGH", "100")
    retired = next(r for r in pipeline.records() if r.merged_into == survivor.id)
    assert (retired.key.mrn, retired.patient_id) == ("OLD-A", survivor.patient_id)
    assert {Identifier("OLD-A", "NGH", "MR"), Identifier("OLD-B", "NGH", "MR")} <= set(
        retired.demographics.identifiers)
    # A later update naming the second old number lands on the survivor.
    ack = pipeline.send(message("PID|1||OLD-B^^^NGH^MR~100^^^NGH^MR||SAMPLE^LATER", control="C9"))
    assert ack.code == "AA" and pipeline.record("NGH", "100").demographics.names[0].given == ("LATER",)


def test_several_a40_groups_are_all_applied() -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200", "300", "400")
    ack = pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR",
                                "PID|2||300^^^NGH^MR", "MRG|400^^^NGH^MR", trigger="A40"))
    assert ack.code == "AA"
    assert merged_into(pipeline, "200", "100") and merged_into(pipeline, "400", "300")


@pytest.mark.parametrize(("segments", "location", "words"), [
    (("PID|1||100^^^NGH^MR",), "PID^1", "patient group 1 has no MRG"),
    (("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR", "PID|2||300^^^NGH^MR", "MRG|400^^^NGH^MR",
      "PID|3||500^^^NGH^MR"), "PID^3", "patient group 3 has no MRG"),
    (("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR", "PID|2||300^^^NGH^MR", "MRG|300^^^NGH^MR"),
     "MRG^2^1^1", "into itself"),
    (("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR", "PID|2||300^^^NGH^MR||X^Y||19991399",
      "MRG|400^^^NGH^MR"), "PID^2^7^1", "PID(2)-7"),
])
def test_a_refused_group_is_located_in_its_own_segments(segments: tuple[str, ...], location: str,
                                                        words: str) -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200", "300", "400")
    ack = pipeline.send(message(*segments, trigger="A40"))
    assert ack.code == "AR"
    assert ack["ERR"][2] == location and words in ack["ERR"][8]


def test_a18_without_mrg_and_a34_with_two_patients_are_refused_not_acknowledged() -> None:
    pipeline = Pipeline()
    registered(pipeline, "100", "200")
    no_mrg = pipeline.send(message("PID|1||100^^^NGH^MR", "PV1|1|I", trigger="A18", version="2.3"))
    two = pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR", "PID|2||300^^^NGH^MR",
                                "MRG|400^^^NGH^MR", trigger="A34", version="2.4", control="C2"))
    assert (no_mrg.code, two.code) == ("AR", "AR")
    # Before v2.5 the location is ERR-1: segment^sequence^field^code.
    assert no_mrg["ERR"][1].startswith("PID^1^^101") and two["ERR"][1].startswith("PID^2^^100")
    assert all(r.merged_into is None for r in pipeline.records())


def test_a_merge_routed_to_ignore_is_refused_and_named_with_its_route() -> None:
    pipeline = Pipeline(RULES.replace("[A18, A30, A34, A35, A36, A39, A40]", "[A40]"))
    registered(pipeline, "100", "200")
    ack = pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR", trigger="A34",
                                version="2.5"))
    assert ack.code == "AR"
    assert "event A34 merges patient records, but routes[3] would ignore it" in ack.text
    assert ack["ERR"][2] == "MSH^1^9^1^2" and ack["ERR"][3].startswith("201")
    assert all(r.merged_into is None for r in pipeline.records())


def test_config_check_refuses_a_route_that_names_a_merge_without_merging_it(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("facilities: [{code: A, tier: 1}]\n"
                    "routes: [{match: {message_type: ADT, trigger: [A08, A34]}, action: upsert_patient}]\n")
    with pytest.raises(ConfigurationError) as refused:
        load_rules(path)
    assert ("routes[0].action: ADT^A34 merges patient records: route it to merge_patients (or "
            "reject it), not upsert_patient") in refused.value.problems
