"""Segments glued together by a lost separator are noticed: refused at their place, or split
and warned about behind ``glued_segments: split``; never read as PID-10 and up."""

from __future__ import annotations

import logging

import pytest

from inbound.hl7.glued import find_glued
from inbound.hl7.reader import parse
from tests.unit.hl7.pipeline import RULES, Pipeline, message

# The CR after PID's trailing separators was lost: PV1 follows inside PID.
GLUED = ("PID|1||100^^^NGH^MR||SAMPLE^GLUE||19800101|F|||PV1|1|O|CLINIC^^^NORTH",)
SPLIT_RULES = RULES.replace("action: upsert_patient}",
                            "action: upsert_patient, glued_segments: split}", 1)


def test_a_glued_segment_is_refused_with_err_at_its_segment_and_field() -> None:
    pipeline = Pipeline()
    ack = pipeline.send(message(*GLUED))
    assert ack.code == "AR"
    err = ack["ERR"]
    assert err[2] == "PID^1^11^1" and err[3].startswith("100")
    assert "PID-11 holds the segment name PV1" in err[8] and "glued_segments: split" in err[8]
    assert pipeline.records() == []


def test_the_second_pid_of_a_merge_is_named_by_its_occurrence() -> None:
    pipeline = Pipeline()
    ack = pipeline.send(message("PID|1||100^^^NGH^MR", "MRG|200^^^NGH^MR",
                                "PID|2||300^^^NGH^MR||X^Y|||PD1|||CLINIC", "MRG|400^^^NGH^MR",
                                trigger="A40"))
    assert ack.code == "AR" and ack["ERR"][2] == "PID^2^8^1"


def test_behind_the_route_setting_it_is_split_applied_and_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    pipeline = Pipeline(SPLIT_RULES)
    with caplog.at_level(logging.WARNING):
        ack = pipeline.send(message(*GLUED))
    assert ack.code == "AA"
    [warning] = ack.all("ERR")
    assert (warning[2], warning[3].split("^")[0], warning[4]) == ("PID^1^11^1", "0", "W")
    assert "segment PV1 was glued to PID and split off" in warning[8]
    [record] = pipeline.records()
    assert record.demographics.sex == "female"
    [command] = pipeline.applied
    assert "PV1" not in repr(command)  # nothing of PV1 was read into the patient's fields
    assert "PID-11" in caplog.text and "SAMPLE" not in caplog.text


def test_values_that_are_not_segment_names_are_left_alone() -> None:
    text = ("MSH|^~\\&|ADT|NORTH|PB|PB|20260301||ADT^A08|C1|P|2.5.1\r"
            "PID|1||100^^^NGH^MR||SAMPLE^ORG||19800101|F|||1 MAIN ST^^LOC^OH|||||CAT|ENG\r"
            "PV1|1|O|LOC")
    assert find_glued(parse(text)) == []
    glued = find_glued(parse(text.replace("|ENG", "|ENG|||NK1|1|SAMPLE^MOM")))
    assert [(g.location, g.name) for g in glued] == [("PID-20", "NK1")]
    # MSH is also a religion code (PID-17): only a glued header is followed by its delimiters.
    religion = text.replace("|CAT|", "|MSH|")
    assert find_glued(parse(religion)) == []
    two_messages = text + "|||MSH|^~\\&|ADT|NORTH"
    assert [(g.location, g.name) for g in find_glued(parse(two_messages))] == [("PV1-6", "MSH")]
