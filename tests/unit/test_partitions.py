"""Inbound partitions: the patient key of an HL7 message and the partition it hashes to."""

from __future__ import annotations

import pytest

from engine.broker import HL7_QUEUE, partition_of, partition_queue
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.amqp_dispatch import patient_key
from tests.integration.engine_harness import adt

MERGE = (b"MSH|^~\\&|EMR|GHH|PB|PB|20260101||ADT^A40^ADT_A39|M-1|P|2.5.1\r"
         b"EVN|A40|20260101\rPID|1||SURV^^^GHH^MR||DOE^ANN\rMRG|PRIOR^^^GHH^MR\r")
CHANGE = (b"MSH|^~\\&|EMR|GHH|PB|PB|20260101||ADT^A47^ADT_A30|C-1|P|2.5.1\r"
          b"EVN|A47|20260101\rPID|1||NEW^^^GHH^MR||DOE^ANN\rMRG|OLD^^^GHH^MR\r")


def key(rules: RoutingRules, body: bytes) -> str:
    return patient_key(body, Router(rules), rules.hl7)


def test_the_key_is_the_record_the_first_pid_names(rules: RoutingRules) -> None:
    assert key(rules, adt("A-1", "MRN-1")) == "GHH|GHH|MRN-1"
    assert key(rules, adt("A-2", "MRN-1", family="ROE", trigger="A04")) == "GHH|GHH|MRN-1"
    assert key(rules, MERGE) == "GHH|GHH|SURV"  # an A40 goes with its survivor
    assert key(rules, CHANGE) == "GHH|GHH|NEW"  # an A47 goes with the messages that follow it


@pytest.mark.parametrize("body", [b"not HL7 at all", adt("O-1", "MRN-1").replace(b"ADT^A08", b"ORU^R01"),
                                  b"MSH|^~\\&|EMR|GHH|PB|PB|20260101||ADT^A08|X|P|2.5.1\r"])
def test_messages_without_a_patient_key_have_the_empty_key(rules: RoutingRules, body: bytes) -> None:
    assert key(rules, body) == ""  # partition 0 refuses them with their reason


def test_partitions_are_stable_and_spread() -> None:
    keys = [f"GHH|GHH|MRN-{n}" for n in range(300)]
    spread = [partition_of(k, 4) for k in keys]
    assert spread == [partition_of(k, 4) for k in keys]  # no per-process salt
    assert {spread.count(p) for p in range(4)} <= set(range(50, 101))
    assert partition_of("GHH|GHH|MRN-1", 1) == 0
    assert partition_of("", 7) == 0  # what the empty key hashes to: partition 0
    assert partition_queue(2) == f"{HL7_QUEUE}.p2"
