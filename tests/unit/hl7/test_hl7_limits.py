"""Values the store cannot hold are refused in HL7 terms: AR/CR with an ERR naming the field."""

from __future__ import annotations

import pytest

from engine.rules import RoutingRules
from inbound.hl7.receiver import Hl7Receiver
from tests.unit.hl7.test_receiver import FakeCommitter, answer, committer, receiver

__all__ = ["committer", "receiver"]  # the fixtures of the receiver's own tests

MSH = "MSH|^~\\&|{app}|GHH|PB|PB|20260101||ADT^{trigger}^ADT_A01|{control}|P|2.5.1{modes}\r"


def message(pid: str = "PID|1||1^^^GHH^MR||DOE^JANE||19800102|F", *, control: str = "C-1",
            app: str = "APP", trigger: str = "A08", modes: str = "", rest: str = "") -> bytes:
    head = MSH.format(app=app, trigger=trigger, control=control, modes=modes)
    return (head + pid + "\r" + rest).encode("utf-8")


def refused(receiver: Hl7Receiver, payload: bytes) -> tuple[str, str, str]:
    """(ACK code, ERR-2 location, ERR-3 code) of a refused message."""
    [ack] = answer(receiver, payload)
    return ack["MSA"][1], ack["ERR"][2], ack["ERR"][3].split("^")[0]


@pytest.mark.parametrize(("payload", "location"), [
    (message(control="X" * 201), "MSH^1^10^1"),
    (message(app="A" * 200), "MSH^1^3^1^1"),
    (message("PID|1||" + "9" * 201 + "^^^GHH^MR"), "PID^1^3^1^1"),
    (message("PID|1||1^^^GHH^MR~" + "9" * 201 + "^^^GHH^PI"), "PID^1^3^2^1"),
    (message("PID|1||1^^^" + "A" * 201 + "^MR"), "PID^1^3^1^4^1"),
    (message("PID|1||1^^^&" + "1." * 101 + "&ISO^MR"), "PID^1^3^1^4^2"),
    (message("PID|1||1^^^GHH^" + "T" * 17), "PID^1^3^1^5"),
    (message("PID|1||1^^^GHH^MR||DO\x00E^JANE"), "PID^1^5^1^1"),
    (message("PID|1||1^^^GHH^MR||DOE^JANE~SM\\X00\\ITH^ANN"), "PID^1^5^2^1"),
    (message("PID|1||1^^^GHH^MR||DOE^JANE||||||1 MAIN&ST\x00&2^^TOWN"), "PID^1^11^1^1^2"),
    (message(control="C\x00-1"), "MSH^1^10^1"),
])
def test_a_value_the_store_cannot_hold_is_ar_at_its_field(receiver: Hl7Receiver, committer: FakeCommitter,
                                                          payload: bytes, location: str) -> None:
    code, where, error = refused(receiver, payload)
    assert (code, where, error) == ("AR", location, "102")
    assert not committer.applied


def test_the_second_pid_and_mrg_of_a_merge_are_named_by_their_occurrence(
        receiver: Hl7Receiver, committer: FakeCommitter) -> None:
    groups = ("PID|1||1^^^GHH^MR||DOE^JANE\rMRG|2^^^GHH^MR\r"
              "PID|2||3^^^GHH^MR||DOE^JOHN\rMRG|" + "4" * 201 + "^^^GHH^MR\r")
    payload = (MSH.format(app="APP", trigger="A40", control="M-1", modes="") + groups).encode()
    assert refused(receiver, payload) == ("AR", "MRG^2^1^1^1", "102")
    second_pid = groups.replace("PID|2||3^", "PID|2||" + "3" * 201 + "^").replace("4" * 201, "4")
    payload = (MSH.format(app="APP", trigger="A40", control="M-2", modes="") + second_pid).encode()
    assert refused(receiver, payload) == ("AR", "PID^2^3^1^1", "102")


def test_enhanced_mode_answers_cr_then_ar(receiver: Hl7Receiver) -> None:
    acks = answer(receiver, message(control="X" * 201, modes="|||AL|AL"))
    assert [a["MSA"][1] for a in acks] == ["CR", "AR"]
    assert acks[0]["ERR"][2] == "MSH^1^10^1"


def test_values_at_the_limit_are_stored(receiver: Hl7Receiver, committer: FakeCommitter) -> None:
    payload = message("PID|1||" + "9" * 200 + "^^^GHH^" + "T" * 16, control="X" * 200)
    [ack] = answer(receiver, payload)
    assert ack["MSA"][1] == "AA"
    assert len(committer.applied) == 1


def test_an_ignored_message_is_not_held_to_the_store_limits(rules: RoutingRules,
                                                            receiver: Hl7Receiver) -> None:
    # A02 is routed to "ignore": nothing of it is stored, so nothing of it must fit.
    [ack] = answer(receiver, message("PID|1||1^^^GHH^MR||DO\x00E", trigger="A02", control="Y" * 300))
    assert ack["MSA"][1] == "AA"


def test_the_ack_reason_names_the_limit_not_the_value(receiver: Hl7Receiver) -> None:
    [ack] = answer(receiver, message("PID|1||" + "MARKER" * 40 + "^^^GHH^MR"))
    assert "at most 200" in ack["ERR"][8] and "MARKER" not in ack["ERR"][8]
