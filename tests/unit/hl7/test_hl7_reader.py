"""The ER7 reader: delimiters, separators, numbering, nulls, escapes in place, malformed input."""

from __future__ import annotations

import pytest
from hl7_corpus import corpus_bytes

from inbound.hl7 import HL7_NULL, Delimiters, parse

ADT = (
    "MSH|^~\\&|SEND|FAC^1.2.3^ISO|RECV|RFAC|20240102030405||ADT^A01^ADT_A01|CTRL1|P|2.5|||AL|NE|"
    "|UNICODE UTF-8\r"
    "EVN|A01|20240102030405\r"
    "PID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^SSA^SS||DOE^JANE^Q~SMITH^JANE^^^^^M||19700101|F|||"
    '1 MAIN ST^^TOWN^ST^12345^USA^H||""|555\\T\\1\r'
)


def corpus_text(name: str) -> str:
    return corpus_bytes(name).decode("latin-1")


# --- delimiters -------------------------------------------------------------------------


def test_standard_delimiters_are_read_from_msh() -> None:
    message = parse(ADT)
    assert message.delimiters == Delimiters()
    assert message.delimiters.encoding_characters == "^~\\&"


def test_nonstandard_field_and_component_separators() -> None:
    message = parse(corpus_text("python-hl7/nonstandard_separators_dollar.hl7"))
    assert message.delimiters == Delimiters(field="$", component="%")
    pid = message.segment("PID")
    assert pid is not None
    assert pid.value(3) == "555-44-4444"
    assert [pid.value(5, c) for c in (1, 2, 3, 4, 5, 6)] == ["EVERYWOMAN", "EVE", "E", "", "", "L"]
    assert message.msh.value(3) == "GHH LAB"


def test_custom_delimiters_with_a_letter_and_a_custom_escape_character() -> None:
    message = parse(corpus_text("hl7apy/custom_delimiters_bang_msh_only.hl7"))
    assert message.delimiters == Delimiters("!", "$", "r", "?", "@")
    assert message.delimiters.encoding_characters == "$r?@"
    msh = message.msh
    assert msh.value(1) == "!" and msh.value(2) == "$r?@"
    assert msh.value(9) == "RSP^SLI^RSP_K11"  # "^" is data here, not a delimiter
    assert msh.value(10) == "430102" and msh.value(12) == "2.5" and msh.value(19) == "EN"


def test_custom_escape_character_is_used_for_escape_sequences() -> None:
    message = parse("MSH!$r?@!A?F?B?S?C?E?D?T?E?R?F\\F\\")
    assert message.msh.value(3) == "A!B$C?D@ErF\\F\\"


def test_v27_truncation_character_is_the_fifth_encoding_character() -> None:
    message = parse(corpus_text("hl7apy/rsp_k22_v27_truncation_char.hl7"))
    assert message.delimiters.truncation == "#"
    assert message.delimiters.encoding_characters == "^~\\&#"
    assert message.msh.value(2) == "^~\\&#"
    pid = message.segment("PID")
    assert pid is not None
    authority = [pid.value(3, 4, s) for s in (1, 2, 3)]
    assert authority == ["GATEWAY", "1.3.6.1.4.1.21367.2011.2.5.17", "ISO"]


# --- segment separators, blank lines, BOM -----------------------------------------------


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_any_segment_separator(separator: str) -> None:
    message = parse(ADT.replace("\r", separator))
    assert [s.name for s in message.segments] == ["MSH", "EVN", "PID"]
    assert message.to_er7() == ADT.rstrip("\r")


def test_mixed_separators_blank_lines_bom_and_trailing_whitespace() -> None:
    text = "\ufeffMSH|^~\\&|A\r\n\r\nEVN|A01\n\rPID|1\r \r\n\t\n"
    message = parse(text)
    assert [s.name for s in message.segments] == ["MSH", "EVN", "PID"]
    assert message.to_er7() == "MSH|^~\\&|A\rEVN|A01\rPID|1"


def test_whitespace_only_lines_inside_the_message_are_ignored() -> None:
    message = parse("MSH|^~\\&|A\r   \rPID|1")
    assert [s.name for s in message.segments] == ["MSH", "PID"]


def test_mixed_separator_corpus_file() -> None:
    message = parse(corpus_text("lfh-hl7v2-fhir-converter/adt_a28_v26_mixed_separators.hl7"))
    assert [s.name for s in message.segments][:5] == ["MSH", "EVN", "PID", "PD1", "NK1"]
    assert len(message.segments_named("AL1")) == 2


# --- numbering, repetitions, components, sub-components ---------------------------------


def test_msh_numbering() -> None:
    msh = parse(ADT).msh
    assert msh.value(1) == "|"
    assert msh.value(2) == "^~\\&"  # verbatim: never split, never unescaped
    assert msh.raw_field(1) == "|" and msh.raw_field(2) == "^~\\&"
    assert msh.value(3) == "SEND"
    assert (msh.value(4), msh.value(4, 2), msh.value(4, 3)) == ("FAC", "1.2.3", "ISO")
    assert (msh.value(9), msh.value(9, 2), msh.value(9, 3)) == ("ADT", "A01", "ADT_A01")
    assert msh.value(10) == "CTRL1" and msh.value(12) == "2.5" and msh.value(18) == "UNICODE UTF-8"
    assert msh.field_count == 18


def test_msh_2_element_is_verbatim() -> None:
    msh = parse(ADT).msh
    element = msh.field(2)
    assert element.component(1) == "^~\\&" and element.component(2) == ""
    assert element.components() == ["^~\\&"] and element.subcomponents(1) == ["^~\\&"]
    assert [e.raw for e in msh.repetitions(2)] == ["^~\\&"]
    assert msh.value(2, 2) == "" and msh.value(2, repetition=1) == ""


def test_other_segments_number_from_the_first_field_after_the_name() -> None:
    message = parse(ADT)
    evn = message.segment("EVN")
    assert evn is not None
    assert evn.value(1) == "A01" and evn.value(2) == "20240102030405"
    assert evn.field_count == 2
    pid = message.segment("PID")
    assert pid is not None
    assert pid.value(1) == "1" and pid.value(7) == "19700101" and pid.value(8) == "F"


def test_repetitions_components_and_subcomponents() -> None:
    pid = parse(ADT).segment("PID")
    assert pid is not None
    ids = pid.repetitions(3)
    assert [e.component(1) for e in ids] == ["123", "456"]
    assert ids[0].subcomponents(4) == ["HOSP", "1.2.3", "ISO"]
    assert (ids[0].component(4, 2), ids[0].component(5)) == ("1.2.3", "MR")
    assert ids[1].component(4) == "SSA" and ids[1].component(4, 2) == ""
    assert pid.value(3, 1, repetition=1) == "456"
    assert pid.value(3, 4, 3) == "ISO"
    assert pid.raw_field(3) == "123^^^HOSP&1.2.3&ISO^MR~456^^^SSA^SS"
    assert pid.field(3, 1).raw == "456^^^SSA^SS"
    assert pid.value(5, 2, repetition=1) == "JANE" and pid.value(5, 7, repetition=1) == "M"
    assert ids[0].components() == ["123", "", "", "HOSP", "MR"]


def test_absent_positions_give_empty_strings() -> None:
    pid = parse(ADT).segment("PID")
    assert pid is not None
    assert pid.value(2) == "" and pid.value(99) == "" and pid.raw_field(99) == ""
    assert pid.value(3, 9) == "" and pid.value(3, 1, 2) == "" and pid.value(3, repetition=5) == ""
    assert pid.value(7, 2) == "" and pid.value(7, 1, 2) == "" and pid.value(7, repetition=1) == ""
    assert pid.value(3, 0) == "" and pid.value(3, 1, 0) == "" and pid.value(3, repetition=-1) == ""
    assert pid.repetitions(2) == [] and pid.repetitions(99) == []
    empty = pid.field(99)
    assert empty.is_empty and not empty.is_null and empty.components() == []
    assert empty.component(1) == "" and empty.subcomponents(1) == []
    assert pid.field(3, 7).is_empty


def test_field_numbers_start_at_one() -> None:
    pid = parse(ADT).segment("PID")
    assert pid is not None
    with pytest.raises(ValueError, match="start at 1"):
        pid.value(0)
    with pytest.raises(ValueError, match="start at 1"):
        pid.raw_field(0)


def test_missing_trailing_separators_and_empty_segments() -> None:
    message = parse("MSH|^~\\&|A|B\rPID|1|2\rPD1\rZZZ|")
    pid = message.segment("PID")
    assert pid is not None and pid.field_count == 2 and pid.value(3) == ""
    pd1 = message.segment("PD1")
    assert pd1 is not None and pd1.field_count == 0 and pd1.value(1) == "" and pd1.raw == "PD1"
    zzz = message.segment("ZZZ")
    assert zzz is not None and zzz.field_count == 1 and zzz.value(1) == ""
    assert message.msh.field_count == 4


def test_segment_lookup() -> None:
    message = parse(corpus_text("hapi-hl7v2/adt_a17_v23_two_pid_no_evn_crlf.hl7"))
    assert message.segment("EVN") is None
    pids = message.segments_named("PID")
    assert [p.value(1) for p in pids] == ["1", "2"]
    assert message.segment("PID") is pids[0]
    assert message.segments_named("ZZZ") == []
    assert message.msh is message.segments[0]


# --- explicit nulls and escapes -----------------------------------------------------------


def test_explicit_nulls() -> None:
    message = parse(corpus_text("hapi-hl7v2/adt_a08_v23_null_quotes.hl7"))
    pid = message.segment("PID")
    assert pid is not None
    assert pid.value(2) == HL7_NULL
    [null] = pid.repetitions(2)
    assert null.is_null and not null.is_empty and null.component(1) == HL7_NULL
    assert null.component(2) == ""
    address = pid.field(11)
    assert address.component(1) == "UNIT A/1 FAKE ST"
    assert address.component(2) == HL7_NULL and address.component(6) == HL7_NULL
    assert pid.value(11, 2) == HL7_NULL


def test_null_repetition_next_to_a_value() -> None:
    pid = parse(corpus_text("hapi-hl7v2/adt_a31_v24_invalid_evn_date.hl7")).segment("PID")
    assert pid is not None
    reps = pid.repetitions(3)
    assert [e.is_null for e in reps] == [False, True]
    assert pid.value(3, repetition=1) == HL7_NULL


def test_values_are_unescaped_raw_values_are_not() -> None:
    pid = parse(ADT).segment("PID")
    assert pid is not None
    assert pid.value(14) == "555&1" and pid.raw_field(14) == "555\\T\\1"
    assert pid.raw_value(14) == "555\\T\\1" and pid.field(14).raw_component(1) == "555\\T\\1"
    assert pid.field(14).component(1) == "555&1" and pid.field(14).components() == ["555&1"]


def test_escaped_field_separator_in_msh_3() -> None:
    message = parse(corpus_text("hapi-hl7v2/oru_r01_v24_msh3_escaped_field_sep.hl7"))
    assert message.msh.value(3) == "|" and message.msh.raw_field(3) == "\\F\\"
    assert message.msh.value(9, 2) == "R01"


def test_highlighting_is_removed_from_msh_8() -> None:
    message = parse(corpus_text("hl7apy/msh_escape_highlight_H_N.hl7"))
    assert message.msh.value(8) == "HIGHLIGHTEDTEXTIMPORTANT"


def test_escapes_inside_components_and_subcomponents() -> None:
    message = parse("MSH|^~\\&|A\rPID|1||X\\S\\Y&Z\\R\\W^\\E\\^\\X41\\\\.br\\B")
    pid = message.segment("PID")
    assert pid is not None
    element = pid.field(3)
    assert element.subcomponents(1) == ["X^Y", "Z~W"]
    assert element.component(2) == "\\" and element.component(3) == "A\nB"
    assert element.components() == ["X^Y", "\\", "A\nB"]
    assert pid.value(3, 3) == "A\nB"


def test_hex_escapes_decode_with_the_message_encoding() -> None:
    assert parse("MSH|^~\\&|\\XE9\\", "latin-1").msh.value(3) == "é"
    assert parse("MSH|^~\\&|\\XC3A9\\").msh.value(3) == "é"


def test_unknown_codec_name_is_a_programming_error() -> None:
    with pytest.raises(LookupError):
        parse("MSH|^~\\&|A", "no-such-codec")


def test_repr_never_shows_patient_data() -> None:
    message = parse(ADT)
    pid = message.segment("PID")
    assert pid is not None
    shown = repr(message) + repr(pid) + repr(pid.field(5))
    assert "DOE" not in shown and "JANE" not in shown
