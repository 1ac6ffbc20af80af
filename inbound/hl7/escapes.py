"""HL7 v2 escape sequences (v2.5 section 2.7) turned back into text.

The reader calls :func:`unescape` on one leaf value (a component or sub-component) at a time,
after splitting, so an escaped delimiter such as ``\\F\\`` can never split a field.
Sequences are read with *this message's* delimiters: a sender that declares ``?`` as its
escape character writes ``?F?``, not ``\\F\\``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # reader imports this module; at run time only the attributes are used
    from inbound.hl7.reader import Delimiters

__all__ = ["unescape"]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

#: Formatting commands (section 2.7.6) a plain-text value cannot express; they are dropped.
#: The first four take an optional signed number (``.sp 2``, ``.in +4``).
_NUMBERED_COMMANDS = frozenset({"sp", "in", "ti", "sk"})
_BARE_COMMANDS = frozenset({"ce", "fi", "nf"})


def unescape(text: str, delimiters: Delimiters, encoding: str = "utf-8") -> str:
    """Return ``text`` with its escape sequences replaced.

    ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` when MSH-2 declares a truncation character)
    become the message's delimiters; ``\\Xhh..\\`` becomes those bytes decoded with
    ``encoding`` (undecodable bytes become U+FFFD); ``\\.br\\`` becomes a line feed;
    highlighting (``\\H\\ \\N\\``), the other formatting commands and character-set switches
    (``\\Cxxyy\\ \\Mxxyyzz\\``) are removed. An unknown sequence, or an escape character
    without a closing one, is kept exactly as written: losing text would be worse.
    """
    escape = delimiters.escape
    if escape not in text:
        return text
    out: list[str] = []
    position = 0
    while True:
        start = text.find(escape, position)
        end = text.find(escape, start + 1) if start >= 0 else -1
        if end < 0:
            out.append(text[position:])
            return "".join(out)
        expansion = _expand(text[start + 1 : end], delimiters, encoding)
        out.append(text[position:start])
        out.append(text[start : end + 1] if expansion is None else expansion)
        position = end + 1


def _expand(sequence: str, delimiters: Delimiters, encoding: str) -> str | None:
    """The text one sequence (without its escape characters) stands for; None if unknown."""
    if len(sequence) == 1:
        return _single_letter(sequence, delimiters)
    head, rest = sequence[:1], sequence[1:]
    if head == "X":
        return _hex(rest, encoding)
    if head == ".":
        return _formatting(rest)
    if head == "C" and len(rest) == 4 and _HEX_DIGITS.issuperset(rest):
        return ""
    if head == "M" and len(rest) in (4, 6) and _HEX_DIGITS.issuperset(rest):
        return ""
    return None


def _single_letter(letter: str, delimiters: Delimiters) -> str | None:
    if letter == "F":
        return delimiters.field
    if letter == "S":
        return delimiters.component
    if letter == "T":
        return delimiters.subcomponent
    if letter == "R":
        return delimiters.repetition
    if letter == "E":
        return delimiters.escape
    if letter == "P" and delimiters.truncation:
        return delimiters.truncation
    if letter in ("H", "N"):
        return ""
    return None


def _hex(digits: str, encoding: str) -> str | None:
    # bytes.fromhex would also accept spaces, which the standard does not allow.
    if not digits or len(digits) % 2 or not _HEX_DIGITS.issuperset(digits):
        return None
    return bytes.fromhex(digits).decode(encoding, errors="replace")


def _formatting(command: str) -> str | None:
    name, argument = command[:2], command[2:].strip()
    if name == "br" and not argument:
        return "\n"
    if name in _BARE_COMMANDS and not argument:
        return ""
    if name in _NUMBERED_COMMANDS and (not argument or _is_signed_integer(argument)):
        return ""
    return None


def _is_signed_integer(text: str) -> bool:
    digits = text[1:] if text[0] in "+-" else text
    return digits.isascii() and digits.isdigit()
