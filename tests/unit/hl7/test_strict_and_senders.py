"""``strict: true`` refusals at the real place, and an empty MSH-4 accepted through senders[]."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import ConfigurationError, InvalidMessage
from engine.routing import Router
from engine.rules import parse_rules
from inbound.hl7.receiver import Hl7Receiver
from inbound.hl7.strict import validate_structure
from tests.fakes import FixedClock
from tests.unit.hl7.pipeline import RULES, Ack, Pipeline, message

STRICT = RULES.replace("action: upsert_patient}", "action: upsert_patient, strict: true}", 1)
STRICT = STRICT.replace("action: merge_patients}", "action: merge_patients, strict: true}", 1)


def strict_answer(payload: bytes) -> Ack:
    pipeline = Pipeline(STRICT)
    receiver = Hl7Receiver(Router(pipeline.rules), pipeline.receiver._apply, FixedClock(),
                           pipeline.rules.hl7, validate=validate_structure)
    return Ack(asyncio.run(receiver.handle_frame(payload))[-1].decode())


@pytest.mark.parametrize(("segments", "trigger", "location", "code", "words"), [
    # A01 without its required PV1: the missing segment, not MSH-9.3.
    (("PID|1||100^^^NGH^MR||SAMPLE^ANN",), "A01", "PV1^1", "101", "PV1 is required in ADT_A01"),
    # A second PID in an ADT_A01.
    (("PID|1||100^^^NGH^MR||SAMPLE^ANN", "PID|2||200^^^NGH^MR||SAMPLE^BOB", "PV1|1|O"), "A01",
     "PID^2", "100", "PID(2) is one PID segment too many"),
    # A set id (SI, a number) that is not a number, in the second patient group of an A40.
    (("PID|1||100^^^NGH^MR||SAMPLE^ANN", "MRG|200^^^NGH^MR",
      "PID|SECOND||300^^^NGH^MR||SAMPLE^BOB", "MRG|400^^^NGH^MR"), "A40", "PID^2^1^1",
     "102", "PID(2)-1 does not fit its HL7 data type"),
    # PID-5 is required: the second PID lacks it.
    (("PID|1||100^^^NGH^MR||SAMPLE^ANN", "MRG|200^^^NGH^MR", "PID|2||300^^^NGH^MR",
      "MRG|400^^^NGH^MR"), "A40", "PID^2^5^1", "101", "PID(2)-5 is required and missing"),
])
def test_strict_refusals_point_at_the_failing_segment_occurrence(
        segments: tuple[str, ...], trigger: str, location: str, code: str, words: str) -> None:
    ack = strict_answer(message(*segments, trigger=trigger, version="2.5"))
    assert ack.code == "AR"
    err = ack["ERR"]
    assert (err[2], err[3].split("^")[0]) == (location, code)
    assert words in err[8] and "SAMPLE" not in err[8] and "SECOND" not in err[8]


def test_a_strict_group_without_its_mrg_is_located_by_the_pid_that_starts_it() -> None:
    text = message("PID|1||100^^^NGH^MR||SAMPLE^ANN", "MRG|200^^^NGH^MR",
                   "PID|2||300^^^NGH^MR||SAMPLE^BOB", "PID|3||500^^^NGH^MR||SAMPLE^CID",
                   "MRG|600^^^NGH^MR", trigger="A40", version="2.5").decode()
    with pytest.raises(InvalidMessage) as refused:
        validate_structure(text)
    assert refused.value.location == "PID(2)"
    assert "group ADT_A39_PATIENT 2, which has no MRG" in refused.value.reason


SENDER_RULES = RULES.replace("routes:", """senders:
  - {application: LEGACYADT, facility: NORTH, accept_without_msh4: true}
  - {application: "*", facility: EAST}
routes:""")


def test_an_empty_msh4_is_accepted_by_msh3_alone_with_the_facility_it_stands_for() -> None:
    pipeline = Pipeline(SENDER_RULES)
    ack = pipeline.send(message("PID|1||100^^^NGH^MR||SAMPLE^ANN", facility="", application="LEGACYADT"))
    assert ack.code == "AA"
    [record] = pipeline.records("NORTH")
    assert record.key.mrn == "100"
    assert ack["MSH"][4:6] == ["LEGACYADT", ""]  # the ACK goes back to the sender as it wrote itself


def test_an_empty_msh4_from_another_application_names_the_setting_that_would_accept_it() -> None:
    pipeline = Pipeline(SENDER_RULES)
    ack = pipeline.send(message("PID|1||100^^^NGH^MR", facility="", application="OTHERAPP"))
    assert ack.code == "AR"
    assert ack["ERR"][2] == "MSH^1^4^1"
    assert ("{application: OTHERAPP, facility: <code>, accept_without_msh4: true}"
            in ack["ERR"][8])
    assert pipeline.records("NORTH") == []


@pytest.mark.parametrize(("senders", "problem"), [
    ('[{application: "*", facility: NORTH, accept_without_msh4: true}]',
     "accept_without_msh4 needs a named application"),
    ("[{application: A, facility: NORTH, accept_without_msh4: true},"
     " {application: a, facility: EAST, accept_without_msh4: true}]",
     "senders[1].accept_without_msh4: application 'a' already stands for a facility in senders[0]"),
])
def test_accepting_an_empty_msh4_must_name_one_application(senders: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_rules(RULES.replace("routes:", f"senders: {senders}\nroutes:"))
    assert any(problem in line for line in refused.value.problems), refused.value.problems
