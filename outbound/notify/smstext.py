"""Text-message bodies: the GSM 03.38 alphabet and the 160-character rule.

An SMS holds 160 characters of the GSM 7-bit alphabet, but only 70 once one character is
outside it: a single "ó" would cut the room by more than half, so bodies are written in the
GSM alphabet. Characters outside it are replaced by their unaccented letter ("código" becomes
"codigo", as Spanish text messages commonly read); "é", "ñ", "ü", "¿", "¡" and the other
letters GSM has are kept.

A body longer than 160 is split into numbered parts, "(1/2) ...", each at most 160: whole
lines first (so a template puts the token on one line and the link on the next, and each
arrives whole), then words, and a word only when a single word is longer than a part.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["SMS_LIMIT", "septets", "split_parts", "to_gsm"]

#: Septets in one SMS.
SMS_LIMIT = 160

_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_EXTENDED = frozenset("^{}\\[~]|€\f")  # two septets each (escape + character)
_LOOKALIKE = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
              "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\t": " "}
_HORIZONTAL_SPACE = re.compile(r"[ ]{2,}")


def _gsm_char(char: str) -> str:
    if char in _BASIC or char in _EXTENDED:
        return char
    if char in _LOOKALIKE:
        return _LOOKALIKE[char]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base and all(c in _BASIC for c in base) else "?"


def to_gsm(text: str) -> str:
    """``text`` in the GSM 03.38 alphabet, spaces tidied, lines trimmed, blank lines dropped."""
    converted = "".join(_gsm_char(char) for char in text.replace("\r\n", "\n"))
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip() for line in converted.split("\n"))
    return "\n".join(line for line in lines if line)


def septets(text: str) -> int:
    """The length of GSM text in septets (extension characters count two)."""
    return len(text) + sum(1 for char in text if char in _EXTENDED)


def split_parts(text: str, limit: int = SMS_LIMIT) -> list[str]:
    """``text`` (GSM already) as one SMS, or as numbered parts of at most ``limit`` septets."""
    if septets(text) <= limit:
        return [text]
    for width in (1, 2):  # "(1/9) " leaves limit - 6; from ten parts on, limit - 8
        room = limit - len(f"({'9' * width}/{'9' * width}) ")
        chunks = _pack(text.split("\n"), room)
        if len(str(len(chunks))) <= width:
            break
    return [f"({number}/{len(chunks)}) {chunk}" for number, chunk in enumerate(chunks, 1)]


def _pack(lines: list[str], room: int) -> list[str]:
    """Greedy packing of lines (joined by newlines) into chunks of at most ``room``."""
    chunks: list[str] = []
    current = ""
    for piece in (p for line in lines for p in _fit(line, room)):
        joined = f"{current}\n{piece}" if current else piece
        if septets(joined) <= room:
            current = joined
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _fit(line: str, room: int) -> list[str]:
    """A line as pieces of at most ``room``: whole when it fits, else split between words."""
    if septets(line) <= room:
        return [line]
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        for bit in _cut(word, room):
            joined = f"{current} {bit}" if current else bit
            if septets(joined) <= room:
                current = joined
            else:
                pieces.append(current)
                current = bit
    if current:
        pieces.append(current)
    return pieces


def _cut(word: str, room: int) -> list[str]:
    """A word longer than a whole part, cut (a last resort: a link that long breaks anyway)."""
    if septets(word) <= room:
        return [word]
    bits: list[str] = []
    current = ""
    for char in word:
        if septets(current + char) > room:
            bits.append(current)
            current = ""
        current += char
    return [*bits, current] if current else bits
