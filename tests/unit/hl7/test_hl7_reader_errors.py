"""What the reader refuses, where it says the problem is, and what it still reads.

The reader is mechanical: a message whose header declares usable delimiters and whose lines
all start with a segment name is read, even when its content is wrong (missing MSH-9 or
MSH-12, letters as delimiters); the translation layer rejects those with their own reasons.
"""

from __future__ import annotations

import pytest
from hl7_corpus import CORPUS, corpus_bytes

from engine.errors import MalformedMessage
from inbound.hl7 import Er7Error, parse

#: Corpus files parse() refuses -> (Er7Error location, words the reason must contain).
REFUSED = {
    "hl7apy/malformed_first_segment_pid_not_msh.hl7": (
        "MSH", "must be the message header MSH, got 'PID'"),
    "hl7apy/malformed_msh2_three_encoding_chars_v27.hl7": (
        "MSH-2", "MSH-2 must hold 4 or 5 distinct encoding characters, got '^~\\\\'"),
    "hl7apy/malformed_msh2_too_many_encoding_chars_v27.hl7": (
        "MSH-2", "MSH-2 must hold 4 or 5 distinct encoding characters, got '^~\\\\&#$'"),
    "hl7apy/malformed_msh2_duplicate_encoding_chars.hl7": (
        "MSH-2", "MSH-2 must hold 4 or 5 distinct encoding characters, got '^&&^'"),
    "lfh-hl7v2-fhir-converter/adt_a01_v26_bad_msh2_literal_backslash_r_crlf.hl7": (
        "MSH-2", "got '^~\\\\\\\\&'"),
    "nhapi/fuzz_adt_a40_one_encoding_char.hl7": (
        "MSH-2", "MSH-2 must hold 4 or 5 distinct encoding characters, got '^'"),
    "nhapi/fuzz_mshh_no_delimiters.hl7": ("MSH-2", "got '0'"),
    "nhapi/fuzz_adt_a40_letter_delimiters.hl7": (
        "segment 4", "segment 4 must start with a segment name (3 capital letters or digits) "
                     "followed by '|', got '0'"),
    "python-hl7/malformed_batch_missing_msh.hl7": ("MSH", "is a batch (BHS)"),
    "python-hl7/mllp_framed_lf_separators.hl7": ("MSH", "MLLP framing"),
    "python-hl7/adt_a04_v25_file_fhs_two_batches.hl7": ("MSH", "is a batch (FHS)"),
    "python-hl7/stream_two_messages_crlf_unframed.hl7": ("segment 3", "second message (MSH)"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_corpus_files(name: str) -> None:
    location, words = REFUSED[name]
    with pytest.raises(Er7Error) as raised:
        parse((CORPUS / name).read_bytes().decode("latin-1"))  # as stored, framing and all
    assert raised.value.location == location
    assert words in raised.value.reason
    assert isinstance(raised.value, MalformedMessage)
    assert str(raised.value) == f"{location}: {raised.value.reason}"


def test_the_unframed_lf_file_fails_on_its_lowercase_segment() -> None:
    with pytest.raises(Er7Error) as raised:
        parse(corpus_bytes("python-hl7/mllp_framed_lf_separators.hl7").decode())
    assert raised.value.location == "segment 2"
    assert "got 'bar'" in raised.value.reason


#: Corpus files named "malformed" whose flaw is content, not structure -> what we read.
READ_ANYWAY = {
    "hl7apy/malformed_msh9_missing_v26.hl7": {9: "", 10: "0123456789", 12: "2.6"},
    "hl7apy/malformed_msh9_incomplete_adt_caret.hl7": {9: "ADT", 10: "", 12: ""},
    "hl7apy/malformed_msh12_missing_version.hl7": {9: "ADT", 10: "", 12: ""},
    "nhapi/adt_a01_v22_missing_msh10_subcomponents.hl7": {9: "ADT", 10: "", 12: "2.2"},
    "hapi-hl7v2/adt_a06_v22_no_evn_no_pid.hl7": {9: "ADT", 12: "2.2"},
    "hapi-hl7v2/adt_a31_v24_invalid_evn_date.hl7": {9: "ADT", 12: "2.4"},
}


@pytest.mark.parametrize("name", sorted(READ_ANYWAY))
def test_content_flaws_are_left_to_the_translation_layer(name: str) -> None:
    msh = parse(corpus_bytes(name).decode("latin-1")).msh
    assert {n: msh.value(n) for n in READ_ANYWAY[name]} == READ_ANYWAY[name]


def test_trigger_missing_after_caret() -> None:
    msh = parse(corpus_bytes("hl7apy/malformed_msh9_incomplete_adt_caret.hl7").decode()).msh
    assert (msh.value(9, 1), msh.value(9, 2), msh.raw_field(9)) == ("ADT", "", "ADT^")


def test_letter_as_escape_character_is_read_mechanically() -> None:
    message = parse("MSH|^~y&|A|yFyB|ADT^A40\rPID|0")
    assert message.delimiters.escape == "y"
    assert message.msh.value(4) == "|B"


@pytest.mark.parametrize(("text", "location", "words"), [
    ("", "MSH", "empty"),
    ("\r\n\r\n", "MSH", "empty"),
    ("\ufeff", "MSH", "empty"),
    ("MSH", "MSH-1", "field separator) is missing"),
    ("MSH|", "MSH-2", "got ''"),
    ("MSH||A", "MSH-2", "got ''"),
    ("MSH|^~\\&&|A", "MSH-2", "got '^~\\\\&&'"),
    ("MSH|^~\\|A", "MSH-2", "got '^~\\\\'"),
    ("\x0bMSH|^~\\&|A", "MSH", "MLLP framing"),
    ("FHS|^~\\&\rMSH|^~\\&", "MSH", "batch (FHS)"),
    ("EVN|A01\rMSH|^~\\&", "MSH", "got 'EVN'"),
    ("MSH|^~\\&|A\rPID1|", "segment 2", "got 'PID1'"),
    ("MSH|^~\\&|A\rpid|1", "segment 2", "got 'pid|'"),
    ("MSH|^~\\&|A\r|00", "segment 2", "got '|00'"),
    ("MSH|^~\\&|A\rP|1", "segment 2", "got 'P|1'"),
    ("MSH|^~\\&|A\r1ID|1", "segment 2", "got '1ID|'"),
    ("MSH|^~\\&|A\r PID|1", "segment 2", "got ' PID'"),
    ("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B", "segment 3", "second message"),
    ("MSH|^~\\&|A\rMSH", "segment 2", "second message"),
    ("MSH$^~\\&$A\rPID|1", "segment 2", "followed by '$', got 'PID|'"),
])
def test_malformed_text(text: str, location: str, words: str) -> None:
    with pytest.raises(Er7Error) as raised:
        parse(text)
    assert raised.value.location == location
    assert words in raised.value.reason


def test_a_valid_head_is_remembered_but_still_checked_per_message() -> None:
    parse("MSH|^~\\&|A\rZX1|1")
    with pytest.raises(Er7Error):
        parse("MSH|^~\\&|A\rZX1|1\rMSH|^~\\&|B")
    assert parse("MSH$^~\\&$A\rZX1$1").segment("ZX1") is not None
