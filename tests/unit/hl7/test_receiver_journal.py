"""Every HL7 message answered is journaled: what came in, what went back, what it did."""

from __future__ import annotations

import asyncio

import pytest

from engine.commands import Outcome
from engine.committer import GroupCommitter
from engine.errors import StoreUnavailable
from engine.handlers import MessageBus
from engine.journal import JournalEntry
from engine.journal_writer import JournalWriter
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.hl7.journaling import sniff_msh
from inbound.hl7.receiver import Hl7Receiver
from inbound.mllp import OversizeFrame
from tests.fakes import FixedClock, InMemoryJournalTrail, InMemoryUnitOfWork, SequentialIds
from tests.unit.hl7.hl7_corpus import corpus_bytes
from tests.unit.hl7.test_receiver import A08, FakeCommitter


@pytest.fixture
def journal() -> JournalWriter:
    return JournalWriter(enabled=True)


@pytest.fixture
def committer() -> FakeCommitter:
    return FakeCommitter()


def receiver_for(rules: RoutingRules, committer: FakeCommitter, journal: JournalWriter,
                 **options: object) -> Hl7Receiver:
    return Hl7Receiver(Router(rules), committer.apply, FixedClock(), rules.hl7, journal=journal,
                       **options)  # type: ignore[arg-type]


def journaled(receiver: Hl7Receiver, journal: JournalWriter, payload: bytes | OversizeFrame
              ) -> tuple[list[bytes], list[JournalEntry]]:
    replies = asyncio.run(receiver.handle_frame(payload))
    return replies, journal.take()


def test_an_applied_message_is_kept_as_received_with_the_ack_sent_and_its_effects(
        rules: RoutingRules, committer: FakeCommitter, journal: JournalWriter) -> None:
    committer.outcome = Outcome("applied", patient_ids=("p1",), events=1)
    [ack], [entry] = journaled(receiver_for(rules, committer, journal), journal, A08)
    assert entry.payload == A08 and entry.response == ack
    assert (entry.channel, entry.sender, entry.control_id, entry.message_type, entry.outcome) == (
        "mllp", "APP^GHH", "C-1", "ADT^A08", "AA")
    assert entry.effects == {"status": "applied", "events": 1}
    assert entry.error_code == "" and entry.reprocess_of is None


def test_a_refusal_keeps_its_code_and_location(rules: RoutingRules, committer: FakeCommitter,
                                               journal: JournalWriter) -> None:
    [ack], [entry] = journaled(receiver_for(rules, committer, journal), journal,
                               A08.replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01"))
    assert (entry.outcome, entry.error_code, entry.error_location) == ("AR", "200", "MSH-9")
    assert entry.message_type == "ORU^R01" and entry.response == ack and entry.effects == {}


def test_a_transient_failure_is_ae_with_code_207(rules: RoutingRules, committer: FakeCommitter,
                                                journal: JournalWriter) -> None:
    committer.fail_with = StoreUnavailable("database unavailable (OperationalError)")
    _, [entry] = journaled(receiver_for(rules, committer, journal), journal, A08)
    assert (entry.outcome, entry.error_code) == ("AE", "207")


def test_unreadable_bytes_are_journaled_whole_with_what_could_be_sniffed(
        rules: RoutingRules, committer: FakeCommitter, journal: JournalWriter) -> None:
    garbled = b"junk\rMSH|^~\\&|LAB|CLINIC|PB|PB|x||ORU^R01|Z-9|P|2.5\r\x00"
    receiver = receiver_for(rules, committer, journal)
    [ack], [entry] = journaled(receiver, journal, garbled)
    assert entry.outcome == "AR" and entry.payload == garbled and entry.response == ack
    assert (entry.sender, entry.control_id, entry.message_type) == ("LAB^CLINIC", "Z-9", "ORU^R01")
    _, [oversize] = journaled(receiver, journal, OversizeFrame(A08[:80], 10_000_000))
    assert oversize.payload == A08[:80] and oversize.control_id == "C-1"


def test_a_batch_is_journaled_message_by_message(rules: RoutingRules, committer: FakeCommitter,
                                                 journal: JournalWriter) -> None:
    raw = corpus_bytes("python-hl7/adt_a04_v25_file_fhs_two_batches.hl7").replace(b"|NE|NE|", b"|AL|NE|")
    _, entries = journaled(receiver_for(rules, committer, journal), journal, raw)
    # The sample's second batch repeats the first message of the first one.
    assert [e.control_id for e in entries] == ["12334456778890", "12334456778891", "12334456778890"]
    for entry in entries:
        assert entry.payload is not None and entry.payload.startswith(b"MSH|")
        assert entry.control_id.encode() in entry.payload  # its own message, not the file
        assert entry.outcome == "AR" and entry.response is not None and b"MSA|CR|" in entry.response


def test_enhanced_mode_keeps_every_acknowledgement_sent(
        rules: RoutingRules, committer: FakeCommitter, journal: JournalWriter) -> None:
    sent, [entry] = journaled(receiver_for(rules, committer, journal), journal,
                              A08.replace(b"|P|2.5.1", b"|P|2.5.1|||AL|AL"))
    assert [s[s.index(b"MSA|"):][:6] for s in sent] == [b"MSA|CA", b"MSA|AA"]
    assert entry.outcome == "AA" and entry.response == b"\n".join(sent)


def test_the_channel_and_the_row_reprocessed_are_named(
        rules: RoutingRules, committer: FakeCommitter, journal: JournalWriter) -> None:
    receiver = receiver_for(rules, committer, journal, channel="amqp", reprocess_of=41)
    acks, error = asyncio.run(receiver.handle_message(A08))
    [entry] = journal.take()
    assert error is None and (entry.channel, entry.reprocess_of) == ("amqp", 41)
    assert entry.payload == A08 and entry.response == acks[0]


def test_on_the_writer_the_entry_commits_with_the_effects_and_holds_the_ack_sent(
        rules: RoutingRules) -> None:
    trail, journal = InMemoryJournalTrail(), JournalWriter(enabled=True)
    writer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()),
                            lambda _check: InMemoryUnitOfWork(journal=trail), journal=journal)
    writer.start()
    try:
        receiver = Hl7Receiver(Router(rules), writer.apply, FixedClock(), rules.hl7,
                               run_on_writer=writer.run, journal=journal)
        [ack] = asyncio.run(receiver.handle_frame(A08))
    finally:
        writer.stop()
    [[entry]] = trail.commits
    assert entry.response == ack and entry.outcome == "AA"
    assert entry.effects["status"] == "applied" and entry.effects["patients"][0]["created"]


def test_sniffing_a_header_that_is_not_there_finds_nothing() -> None:
    assert sniff_msh("no header at all") == ("", "", "")
    assert sniff_msh("MSH|^~\\&|APP^X|FAC^Y") == ("APP^FAC", "", "")
