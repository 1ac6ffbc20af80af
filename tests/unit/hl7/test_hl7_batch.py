"""One text, many messages: batch files and concatenated streams."""

from __future__ import annotations

import pytest
from hl7_corpus import CORPUS, corpus_bytes

from inbound.hl7 import Batch, Er7Error, parse, split_stream


def corpus_text(name: str) -> str:
    return corpus_bytes(name).decode("utf-8")


def test_single_message_is_not_a_batch() -> None:
    batch = split_stream("MSH|^~\\&|A\rPID|1\r")
    assert batch == Batch(["MSH|^~\\&|A\rPID|1"], [])
    assert not batch.is_batch


def test_bhs_bts_batch() -> None:
    batch = split_stream(corpus_text("python-hl7/adt_a04_v25_batch_bhs_bts.hl7"))
    assert batch.is_batch
    assert [s[:3] for s in batch.envelope] == ["BHS", "BTS"]
    assert batch.envelope[1] == "BTS|1"
    [message] = batch.messages
    assert [s[:3] for s in message.split("\r")] == ["MSH", "EVN", "PID", "PD1", "NK1", "PV1"]
    assert parse(message).msh.value(9, 2) == "A04"


def test_fhs_file_with_two_batches() -> None:
    batch = split_stream(corpus_text("python-hl7/adt_a04_v25_file_fhs_two_batches.hl7"))
    assert [s[:3] for s in batch.envelope] == ["FHS", "BHS", "BTS", "BHS", "BTS", "FTS"]
    assert batch.envelope[-1] == "FTS|2"
    ids = [parse(m).msh.value(10) for m in batch.messages]
    assert ids == ["12334456778890", "12334456778891", "12334456778890"]
    assert all(m.startswith("MSH|") and "BTS" not in m for m in batch.messages)


def test_two_concatenated_messages_with_crlf() -> None:
    batch = split_stream(corpus_text("python-hl7/stream_two_messages_crlf_unframed.hl7"))
    assert batch.messages == ["MSH|^~\\&|1\rOBX|1", "MSH|^~\\&|2\rOBX|2"]
    assert not batch.is_batch


def test_blank_lines_bom_and_mixed_separators_between_messages() -> None:
    text = "\ufeff\r\nMSH|^~\\&|1\nPID|1\r\n\r\n\nMSH|^~\\&|2\rPID|2\n \n"
    assert split_stream(text).messages == ["MSH|^~\\&|1\rPID|1", "MSH|^~\\&|2\rPID|2"]


def test_messages_may_declare_different_delimiters() -> None:
    batch = split_stream("MSH|^~\\&|A\rPID|1|x^y\rMSH$%~\\&$B\rPID$1$x%y")
    values = [parse(m).segment("PID") for m in batch.messages]
    assert [p.value(2, 2) for p in values if p is not None] == ["y", "y"]


def test_an_envelope_without_messages_is_an_empty_batch() -> None:
    batch = split_stream("BHS|^~\\&\rBTS|0")
    assert batch.messages == [] and batch.is_batch


def test_batch_header_directly_followed_by_segments_is_refused() -> None:
    with pytest.raises(Er7Error) as raised:
        split_stream(corpus_text("python-hl7/malformed_batch_missing_msh.hl7"))
    assert raised.value.location == "MSH"
    assert raised.value.reason == (
        "segment 2 ('EVN') came right after BHS instead of a message header (MSH)")


@pytest.mark.parametrize(("text", "words"), [
    ("PID|1\rMSH|^~\\&", "segment 1 ('PID') came before any message header (MSH)"),
    ("MSH|^~\\&\rPID|1\rBTS|1\rPID|2", "segment 4 ('PID') came right after BTS"),
    ("\x0bMSH|^~\\&|A\x1c\r", "MLLP framing"),
    ("", "no HL7 segments"),
    ("\r\n  \r\n", "no HL7 segments"),
])
def test_refused_streams(text: str, words: str) -> None:
    with pytest.raises(Er7Error) as raised:
        split_stream(text)
    assert raised.value.location == "MSH"
    assert words in raised.value.reason


def test_every_corpus_file_that_is_a_stream_or_batch_is_found() -> None:
    batches = {p.name for p in CORPUS.rglob("*.hl7")
               if p.read_bytes().lstrip(b"\xef\xbb\xbf").startswith((b"FHS", b"BHS"))}
    assert batches == {"adt_a04_v25_batch_bhs_bts.hl7", "adt_a04_v25_file_fhs_two_batches.hl7",
                       "malformed_batch_missing_msh.hl7"}
