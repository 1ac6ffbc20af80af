"""Every HL7 v2 escape sequence, read with the message's own delimiters."""

from __future__ import annotations

import pytest

from inbound.hl7 import Delimiters, unescape

STANDARD = Delimiters()
CUSTOM = Delimiters(field="!", component="$", repetition="r", escape="?", subcomponent="@")
V27 = Delimiters(truncation="#")


@pytest.mark.parametrize(("text", "expected"), [
    ("\\F\\", "|"), ("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~"), ("\\E\\", "\\"),
    ("A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F", "A|B^C&D~E\\F"),
    ("\\E\\F\\E\\", "\\F\\"),  # an escaped escape is not the start of a sequence
    ("\\H\\bold\\N\\ plain", "bold plain"),
    ("\\X41\\", "A"), ("\\X414243\\", "ABC"), ("\\Xc3a9\\", "é"), ("\\XC3A9\\", "é"),
    ("\\XFF\\", "\ufffd"),  # not UTF-8: replaced, never an exception
    ("line1\\.br\\line2", "line1\nline2"),
    ("a\\.sp\\b\\.sp 2\\c\\.sp+1\\d", "abcd"),
    ("a\\.in +4\\b\\.ti -2\\c\\.sk 3\\d", "abcd"),
    ("\\.ce\\centred\\.fi\\filled\\.nf\\", "centredfilled"),
    ("\\C2842\\jis\\C2D41\\", "jis"), ("\\M2442\\kanji\\M242844\\", "kanji"),
])
def test_known_sequences(text: str, expected: str) -> None:
    assert unescape(text, STANDARD) == expected


@pytest.mark.parametrize("text", [
    "\\Q\\", "\\\\", "\\Zcustom\\", "\\XABC\\", "\\XGG\\", "\\X\\", "\\X41 42\\",
    "\\C12\\", "\\M12345\\", "\\.xx\\", "\\.br 2\\", "\\.sp x\\", "\\.ce 1\\", "\\P\\",
    "\\FF\\", "C:\\temp", "trailing\\", "\\F",
])
def test_unknown_or_unterminated_sequences_are_kept(text: str) -> None:
    assert unescape(text, STANDARD) == text


def test_text_after_an_unknown_sequence_is_still_unescaped() -> None:
    assert unescape("\\Q\\x\\F\\y\\", STANDARD) == "\\Q\\x|y\\"


def test_custom_escape_character_and_delimiters() -> None:
    assert unescape("a?F?b?S?c?T?d?R?e?E?f", CUSTOM) == "a!b$c@dre?f"
    assert unescape("?X41?", CUSTOM) == "A"
    assert unescape("\\F\\", CUSTOM) == "\\F\\"  # backslash is plain text for this sender


def test_truncation_escape_only_when_declared() -> None:
    assert unescape("50\\P\\", V27) == "50#"
    assert unescape("50\\P\\", STANDARD) == "50\\P\\"


def test_hex_uses_the_given_encoding() -> None:
    assert unescape("\\XE9\\", STANDARD, "latin-1") == "é"
    assert unescape("\\X80\\", STANDARD, "cp1252") == "€"
    assert unescape("\\XE9\\", STANDARD) == "\ufffd"


def test_text_without_the_escape_character_is_returned_as_is() -> None:
    text = "no escapes here ^&~|"
    assert unescape(text, STANDARD) is text
