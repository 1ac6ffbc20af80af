"""From frame bytes to acknowledgements, with a fake in place of the committer."""

from __future__ import annotations

import asyncio

import pytest

from engine.commands import Command, Outcome, UpsertPatientRecord
from engine.errors import EngineError, StoreUnavailable
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.hl7.receiver import Hl7Receiver, sniff_control_id
from inbound.mllp import OversizeFrame
from tests.fakes import FixedClock
from tests.unit.hl7.hl7_corpus import corpus_bytes, corpus_files

A08 = (b"MSH|^~\\&|APP|GHH|PB|PB|20260101||ADT^A08^ADT_A01|C-1|P|2.5.1\r"
       b"PID|1||1^^^GHH^MR||DOE^JANE")


class FakeCommitter:
    """Stands in for GroupCommitter.apply: records commands, answers as told."""

    def __init__(self) -> None:
        self.applied: list[Command] = []
        self.fail_with: EngineError | None = None
        self.outcome = Outcome("applied")

    async def apply(self, command: Command) -> Outcome:
        if self.fail_with is not None:
            raise self.fail_with
        self.applied.append(command)
        return self.outcome


@pytest.fixture
def committer() -> FakeCommitter:
    return FakeCommitter()


@pytest.fixture
def receiver(rules: RoutingRules, committer: FakeCommitter) -> Hl7Receiver:
    return Hl7Receiver(Router(rules), committer.apply, FixedClock(), rules.hl7)


def answer(receiver: Hl7Receiver, payload: bytes | OversizeFrame) -> list[dict[str, list[str]]]:
    """Each acknowledgement as {segment name: fields}."""
    replies = asyncio.run(receiver.handle_frame(payload))
    parsed = []
    for reply in replies:
        text = reply.decode("latin-1")
        parsed.append({seg[:3]: seg.split("|") for seg in text.split("\r") if seg})
    return parsed


def test_an_adt_is_applied_and_acknowledged_after(receiver: Hl7Receiver, committer: FakeCommitter) -> None:
    [ack] = answer(receiver, A08)
    assert ack["MSA"][1:3] == ["AA", "C-1"]
    assert isinstance(committer.applied[0], UpsertPatientRecord)


def test_a_transient_failure_is_ae_and_a_duplicate_is_aa(receiver: Hl7Receiver,
                                                         committer: FakeCommitter) -> None:
    committer.fail_with = StoreUnavailable("database unavailable (OperationalError)")
    [ack] = answer(receiver, A08)
    assert ack["MSA"][1] == "AE" and ack["ERR"][3].startswith("207")
    committer.fail_with = None
    committer.outcome = Outcome("duplicate", detail="already committed; not applied again")
    [ack] = answer(receiver, A08)
    assert ack["MSA"][1:4] == ["AA", "C-1", "already committed; not applied again"]


@pytest.mark.parametrize(("change", "code", "location"), [
    ((b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01"), "200", "MSH^1^9^1"),
    ((b"|GHH|", b"|NOWHERE|"), "103", "MSH^1^4^1"),
    ((b"|C-1|", b"||"), "101", "MSH^1^10^1"),
    ((b"ADT^A08^ADT_A01", b"ADT"), "101", "MSH^1^9^1^2"),
    ((b"DOE^JANE", b"DOE^JANE||1999-13-01"), "102", "PID^1^7^1"),
])
def test_refusals_are_ar_with_err(receiver: Hl7Receiver, committer: FakeCommitter,
                                  change: tuple[bytes, bytes], code: str, location: str) -> None:
    [ack] = answer(receiver, A08.replace(*change))
    assert ack["MSA"][1] == "AR"
    assert ack["ERR"][2] == location and ack["ERR"][3].startswith(code)
    assert committer.applied == []


def test_an_ignored_trigger_is_aa_without_applying(receiver: Hl7Receiver, committer: FakeCommitter) -> None:
    [ack] = answer(receiver, A08.replace(b"ADT^A08", b"ADT^A02"))
    assert ack["MSA"][1] == "AA" and ack["MSA"][3] == "not applied: not used"
    assert committer.applied == []


def test_enhanced_mode_answers_with_a_commit_accept(receiver: Hl7Receiver) -> None:
    [ack] = answer(receiver, A08.replace(b"|P|2.5.1", b"|P|2.5.1|||AL|NE"))
    assert ack["MSA"][1] == "CA"
    assert answer(receiver, A08.replace(b"|P|2.5.1", b"|P|2.5.1|||NE|NE")) == []


def batch_answer(receiver: Hl7Receiver, raw: bytes) -> list[str]:
    [batch] = [r.decode() for r in asyncio.run(receiver.handle_frame(raw))]
    return batch.rstrip("\r").split("\r")


def test_a_batch_file_is_answered_with_a_batch_of_acks(receiver: Hl7Receiver) -> None:
    raw = corpus_bytes("python-hl7/adt_a04_v25_file_fhs_two_batches.hl7")
    # Its messages ask for no acknowledgement at all (MSH-15 and MSH-16 are NE).
    assert batch_answer(receiver, raw)[-1] == "BTS|0"
    segments = batch_answer(receiver, raw.replace(b"|NE|NE|", b"|AL|NE|"))
    assert segments[0].startswith("BHS|") and segments[-1] == "BTS|3"
    # The sample's facility ABCHS is not in routing.yaml: each message is refused by name.
    assert [s.split("|")[1] for s in segments if s.startswith("MSA|")] == ["CR", "CR", "CR"]


def test_cp1252_bytes_without_msh18_are_read_with_the_fallback(receiver: Hl7Receiver,
                                                               committer: FakeCommitter) -> None:
    [ack] = answer(receiver, A08.replace(b"DOE^JANE", b"DOE\x96SMITH^JANE"))
    assert ack["MSA"][1] == "AA"
    command = committer.applied[0]
    assert isinstance(command, UpsertPatientRecord)
    assert command.update.values.names[0].family == "DOE\u2013SMITH"


def test_an_oversize_frame_is_refused_by_control_id(receiver: Hl7Receiver) -> None:
    [ack] = answer(receiver, OversizeFrame(A08[:80], 10_000_000))
    assert ack["MSA"][1:3] == ["AR", "C-1"]
    assert "exceeds the limit" in ack["MSA"][3]


@pytest.mark.parametrize("name", [n for n in corpus_files() if "malformed" in n or "fuzz" in n])
def test_every_malformed_corpus_file_gets_a_clear_refusal(receiver: Hl7Receiver, committer: FakeCommitter,
                                                          name: str) -> None:
    acks = answer(receiver, corpus_bytes(name))
    assert acks, "a malformed message must still be answered"
    for ack in acks:
        assert ack["MSA"][1] == "AR"
        assert ack["ERR"][3].split("^")[0] in {"100", "101", "102", "103", "200"}
        assert ack["MSA"][3], "the reason is stated"
    assert committer.applied == []


def test_sniffing_the_control_id_of_an_unreadable_message() -> None:
    assert sniff_control_id("junk\rMSH|^|A|B|C|D|E|F|ADT^A01|CTRL|P") == "CTRL"
    assert sniff_control_id("no header") == ""


class BrokenRouter(Router):
    """A router with a bug: every message makes it raise."""

    def route(self, request: object) -> object:  # type: ignore[override]
        raise RuntimeError("a bug, not a refusal")


def test_a_bug_while_reading_is_an_ae_not_a_silence(rules: RoutingRules, committer: FakeCommitter) -> None:
    receiver = Hl7Receiver(BrokenRouter(rules), committer.apply, FixedClock(), rules.hl7)
    [ack] = answer(receiver, A08)
    assert ack["MSA"][1:3] == ["AE", "C-1"]
    assert "internal error" in ack["MSA"][3]


STRICT_RULES = """
facilities: [{code: SENDFAC, tier: 1, aliases: ["SEND FAC"]}]
routes:
  - {match: {message_type: ADT, trigger: A01}, action: upsert_patient, strict: true}
"""


def test_a_strict_route_validates_the_structure_with_hl7apy(committer: FakeCommitter) -> None:
    from engine.rules import parse_rules
    from inbound.hl7.strict import validate_structure

    rules = parse_rules(STRICT_RULES)
    receiver = Hl7Receiver(Router(rules), committer.apply, FixedClock(), rules.hl7,
                           validate=validate_structure)
    valid = corpus_bytes("hl7apy/adt_a01_v25_full.hl7")  # a complete ADT_A01 (MSH-16 AL)
    assert [a["MSA"][1] for a in answer(receiver, valid)] == ["CA", "AA"]
    # The same message without its required PV1 segment breaks the ADT_A01 structure.
    broken = b"\r".join(s for s in valid.split(b"\r") if not s.startswith(b"PV1"))
    accept, application = answer(receiver, broken)
    assert (accept["MSA"][1], application["MSA"][1]) == ("CR", "AR")
    assert "structure validation failed" in application["MSA"][3]
    assert len(committer.applied) == 1


def test_strict_refusals_never_quote_patient_values(committer: FakeCommitter,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from engine.rules import parse_rules
    from inbound.hl7.strict import validate_structure

    rules = parse_rules(STRICT_RULES)
    receiver = Hl7Receiver(Router(rules), committer.apply, FixedClock(), rules.hl7,
                           validate=validate_structure)
    secret = b"PRIVATENAME" * 20  # longer than XPN allows: hl7apy's own message quotes it
    message = corpus_bytes("hl7apy/adt_a01_v25_full.hl7").replace(b"SURNAME^NAME^A", secret + b"^NAME")
    with caplog.at_level("INFO"):
        acks = answer(receiver, message)
    assert acks[-1]["MSA"][1] == "AR" and "data type" in acks[-1]["MSA"][3]
    assert b"PRIVATENAME" not in b"".join(asyncio.run(receiver.handle_frame(message)))
    assert "PRIVATENAME" not in caplog.text
