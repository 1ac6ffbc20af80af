"""Bytes to text: byte-order marks, MSH-18, the fallback for senders that declare nothing."""

from __future__ import annotations

import codecs

import pytest
from hl7_corpus import corpus_bytes

from inbound.hl7 import Er7Error, decode_message, parse
from inbound.hl7.charset import HL7_CHARSETS, codec_for, declared_charset


def msh(charset: str = "", tail: str = "PID|1||||MÜLLER^JOSÉ") -> str:
    return f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5|||||DE|{charset}\r{tail}"


def test_latin_1_bytes_declared_8859_1() -> None:
    raw = msh("8859/1").encode("latin-1")
    text, codec = decode_message(raw)
    assert codec == "iso8859-1"
    assert text.endswith("MÜLLER^JOSÉ")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the test really uses bytes UTF-8 cannot read


def test_corpus_file_declaring_8859_1() -> None:
    text, codec = decode_message(corpus_bytes("hapi-hl7v2/adt_a31_v23_crlf_timezone.hl7"))
    assert codec == "iso8859-1"
    assert parse(text, codec).msh.value(18) == "8859/1"


def test_cp1252_bytes_without_msh_18_use_the_fallback() -> None:
    raw = corpus_bytes("python-hl7/non_utf8_cp1252_bytes.hl7")
    text, codec = decode_message(raw)
    assert codec == "cp1252"
    assert parse(text, codec).msh.value(4) == "ELAB\u20133"  # 0x96 is an en dash in cp1252


def test_no_fallback_refuses_bytes_that_are_not_utf_8() -> None:
    with pytest.raises(Er7Error) as raised:
        decode_message(corpus_bytes("python-hl7/non_utf8_cp1252_bytes.hl7"), fallback=None)
    assert raised.value.location == "MSH-18"
    assert "not UTF-8 (byte 0x96 at offset 21)" in raised.value.reason
    assert "MSH-18 names no character set" in raised.value.reason


def test_a_fallback_that_cannot_read_the_bytes_is_refused() -> None:
    with pytest.raises(Er7Error, match="fallback ascii"):
        decode_message(msh().encode("latin-1"), fallback="ascii")


def test_utf_8_without_msh_18() -> None:
    assert decode_message(msh().encode()) == (msh(), "utf-8")


@pytest.mark.parametrize(("bom", "codec"), [
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
])
def test_byte_order_marks_decide_and_are_removed(bom: bytes, codec: str) -> None:
    text = msh("8859/1")  # the mark wins over what MSH-18 says
    assert decode_message(bom + text.encode(codec)) == (text, codec)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_text_without_a_byte_order_mark(codec: str) -> None:
    assert decode_message(msh().encode(codec)) == (msh(), codec)


def test_utf_8_bom_corpus_file() -> None:
    raw = corpus_bytes("ms-fhir-converter/adt_a04_v23_mario_bom.hl7")
    assert raw.startswith(codecs.BOM_UTF8)
    text, codec = decode_message(raw)
    assert codec == "utf-8" and text.startswith("MSH|")


def test_bytes_invalid_in_the_declared_charset() -> None:
    with pytest.raises(Er7Error) as raised:
        decode_message(msh("UNICODE UTF-8").encode("latin-1"))
    assert raised.value.location == "MSH-18"
    assert "not valid 'UNICODE UTF-8' as declared in MSH-18: byte 0xDC" in raised.value.reason
    with pytest.raises(Er7Error, match="'ASCII' as declared"):
        decode_message(msh("ASCII").encode("latin-1"))


def test_unknown_charset() -> None:
    with pytest.raises(Er7Error) as raised:
        decode_message(msh("KLINGON").encode())
    assert raised.value.location == "MSH-18"
    assert raised.value.reason == (
        "MSH-18 names an unknown character set 'KLINGON' (see HL7 table 0211)")


def test_known_charset_without_a_python_codec() -> None:
    with pytest.raises(Er7Error, match=r"CNS 11643-1992 .* not supported"):
        decode_message(msh("CNS 11643-1992").encode())


def test_utf_16_declared_for_single_byte_text() -> None:
    with pytest.raises(Er7Error, match="declares 'UNICODE UTF-16', but the message is single-byte"):
        decode_message(msh("UNICODE UTF-16").encode())


@pytest.mark.parametrize(("declared", "codec"), [
    ("ASCII", "ascii"), ("8859/1", "iso8859-1"), ("8859/2", "iso8859-2"),
    ("8859/9", "iso8859-9"), ("8859/15", "iso8859-15"), ("ISO IR6", "ascii"),
    ("ISO IR100", "iso8859-1"), ("ISO IR14", "iso2022_jp"), ("ISO IR87", "iso2022_jp"),
    ("ISO IR159", "iso2022_jp_2"), ("UNICODE", "utf-8"), ("UNICODE UTF-8", "utf-8"),
    ("UNICODE UTF-16", "utf-16"), ("UNICODE UTF-32", "utf-32"), ("GB 18030-2000", "gb18030"),
    ("KS X 1001", "euc_kr"), ("BIG-5", "big5"),
    ("unicode utf-8", "utf-8"), (" Unicode  UTF-8 ", "utf-8"), ("UTF-8", "utf-8"),
    ("UTF8", "utf-8"), ("utf_8", "utf-8"), ("ISO-8859-1", "iso8859-1"), ("iso 8859/1", "iso8859-1"),
    ("ISO8859-15", "iso8859-15"), ("WINDOWS-1252", "cp1252"), ("CP1252", "cp1252"),
    ("Latin1", "iso8859-1"), ("8859/1 ", "iso8859-1"),
])
def test_table_0211_and_common_variants(declared: str, codec: str) -> None:
    assert codec_for(declared) == codec


def test_every_mapped_codec_exists() -> None:
    for codec in set(HL7_CHARSETS.values()):
        codecs.lookup(codec)


def test_each_charset_decodes_its_own_bytes() -> None:
    for declared, sample in (("8859/5", "Иван"), ("8859/7", "Ελένη"), ("GB 18030-2000", "王"),
                             ("KS X 1001", "김"), ("BIG-5", "陳"), ("ISO IR87", "山田")):
        codec = codec_for(declared)
        text, used = decode_message(msh(declared, f"PID|1||||{sample}").encode(codec))
        assert used == codec and text.endswith(sample)


@pytest.mark.parametrize(("text", "declared"), [
    (msh("8859/1~ISO IR87"), "8859/1"),  # first repetition: the default character set
    (msh("8859/1^X"), "8859/1"),
    (msh('""'), ""),  # the explicit null declares nothing
    (msh("  "), ""),
    ("MSH|^~\\&|A", ""),  # too short to have MSH-18
    ("BHS|^~\\&\r" + msh("ASCII"), "ASCII"),  # first MSH of a batch
    ("BHS|^~\\&\n" + msh("ASCII"), "ASCII"),
    ("PID|1", ""),
    ("MSH", ""),
    ("MSH$^~\\&$A$B$C$D$1$$ADT$1$P$2.5$$$$$$8859/1", "8859/1"),
])
def test_msh_18_is_read_from_the_bytes(text: str, declared: str) -> None:
    assert declared_charset(text.encode("latin-1")) == declared
