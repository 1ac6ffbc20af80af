"""Our reader against hl7apy, the reference parser, on every HL7 v2 file of the corpus.

Each corpus file is its own test case, found on disk, so a new file is compared as soon as
it is added. A file is read as the engine reads it (charset, stream splitting, then one
parse per message) and each message is given to hl7apy's ``parse_message`` (tolerant,
``find_groups=False``) with CR separators.

What is compared: for every mapped field (MSH, EVN, PID, MRG, PD1; see ``MAPPED``), in every
occurrence of its segment, the number of repetitions and, in each repetition, every mapped
component / sub-component:

* RAW: our escaped leaf (``Element.raw_component``) must equal hl7apy's leaf text. hl7apy
  keeps leaves as written and has no unescape (its ``to_er7`` re-escapes and even mangles
  ``\\X..\\``), so the raw text is the independent, byte-exact check of the splitting.
* UNESCAPED: our ``Element.component`` and ``Segment.value`` must both equal our
  ``unescape`` of hl7apy's leaf. This shares ``unescape`` with the reader on purpose: its own
  correctness is pinned by hand-written expectations in ``test_hl7_escapes.py``; here it
  proves both read paths pick the same leaf and apply it.

hl7apy normalises whitespace where we keep the data as sent: it drops a field or component
that is only blanks and strips the ends of a segment. So a leaf hl7apy does not have must be
blank on our side, and a leaf at the very end of a segment is compared without trailing
blanks. hl7apy also keeps, but cannot name, what its version of the standard does not define
(EVN-1 withdrawn in v2.8, a 3rd MSH-9 component in v2.3, a CX component past CX.10): those
unnamed pieces take, in order, the positions of our non-blank pieces it left unnamed, and
are then compared like the others (see ``_by_number``). Numbers hl7apy keeps as Decimals
("0699999" becomes 699999) are compared as numbers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hl7_corpus import corpus_bytes, corpus_files, corpus_messages
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import (
    HL7apyException,
    InvalidEncodingChars,
    InvalidName,
    ParserError,
    UnsupportedVersion,
)
from hl7apy.parser import parse_message

from inbound.hl7 import Element, Er7Error, Er7Message, Segment, parse, unescape

ONE = ((1, 1),)
HD = ((1, 1), (2, 1), (3, 1))
CX = ((1, 1), (4, 1), (4, 2), (4, 3), (5, 1))
XPN = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (7, 1))
XAD = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1))
XTN = tuple((c, 1) for c in range(1, 9))

#: segment -> ((field, ((component, sub-component), ...)), ...): what translation reads.
MAPPED: dict[str, tuple[tuple[int, tuple[tuple[int, int], ...]], ...]] = {
    "MSH": ((1, ONE), (2, ONE), (3, ONE), (4, HD), (5, ONE), (6, HD), (7, ONE),
            (9, ((1, 1), (2, 1), (3, 1))), (10, ONE), (11, ONE), (12, ONE), (15, ONE),
            (16, ONE), (18, ONE)),
    "EVN": ((1, ONE), (2, ONE), (6, ONE)),
    "PID": ((2, ONE), (3, CX), (4, ONE), (5, XPN), (6, ONE), (7, ONE), (8, ONE), (11, XAD),
            (13, XTN), (14, XTN), (19, ONE), (29, ONE), (30, ONE)),
    "MRG": ((1, CX), (7, XPN)),
    "PD1": ((3, ONE), (4, ((1, 1), (2, 1)))),
}

#: Files our reader rejects -> (our Er7Error location, the error hl7apy raises on them too).
WE_REJECT: dict[str, tuple[str, type[HL7apyException]]] = {
    "hl7apy/malformed_first_segment_pid_not_msh.hl7": ("MSH", ParserError),
    "hl7apy/malformed_msh2_duplicate_encoding_chars.hl7": ("MSH-2", InvalidEncodingChars),
    "hl7apy/malformed_msh2_three_encoding_chars_v27.hl7": ("MSH-2", InvalidEncodingChars),
    "hl7apy/malformed_msh2_too_many_encoding_chars_v27.hl7": ("MSH-2", InvalidEncodingChars),
    "lfh-hl7v2-fhir-converter/adt_a01_v26_bad_msh2_literal_backslash_r_crlf.hl7": (
        "MSH-2", InvalidEncodingChars),
    "nhapi/fuzz_adt_a40_letter_delimiters.hl7": ("segment 4", InvalidName),  # segment "0"
    "nhapi/fuzz_adt_a40_one_encoding_char.hl7": ("MSH-2", InvalidEncodingChars),
    "nhapi/fuzz_mshh_no_delimiters.hl7": ("MSH-2", InvalidEncodingChars),
    "python-hl7/malformed_batch_missing_msh.hl7": ("MSH", ParserError),
    "python-hl7/mllp_framed_lf_separators.hl7": ("segment 2", InvalidName),  # segment "bar"
}

#: Files we read but hl7apy cannot -> (why, its error, values we assert instead:
#: (segment, field, component, sub-component, repetition) -> value).
HL7APY_CANNOT_READ: dict[str, tuple[str, type[HL7apyException],
                                    dict[tuple[str, int, int, int, int], str]]] = {
    "hapi-hl7v2/ras_o17_v25_escape_F_unknown_segments.hl7": (
        "hl7apy rejects the unknown non-Z segment ABC even when tolerant", InvalidName,
        {("PV1", 3, 1, 1, 0): "Acme Hospital|3rd Floor Room 124", ("MSH", 9, 3, 1, 0): "RAS_O17",
         ("PID", 3, 1, 1, 1): "01238638267", ("PID", 3, 4, 1, 1): "http://acme.org/secondaryIds"}),
    "python-hl7/ack_a01_v23_mllp_framed.hl7": (
        "MSH ends with the two characters '\\r' instead of a CR, so MSH-12 reads '2.3\\rMSA', "
        "a version hl7apy does not support", UnsupportedVersion,
        {("MSH", 12, 1, 1, 0): "2.3\\rMSA", ("MSH", 13, 1, 1, 0): "AA",
         ("MSH", 14, 1, 1, 0): "HL7MSG00001"}),
}


def test_the_lists_name_only_corpus_files() -> None:
    files = set(corpus_files())
    assert set(WE_REJECT) <= files
    assert set(HL7APY_CANNOT_READ) <= files
    assert len(files) >= 71


@pytest.mark.parametrize("name", corpus_files())
def test_agrees_with_hl7apy(name: str) -> None:
    if name in WE_REJECT:
        location, their_error = WE_REJECT[name]
        with pytest.raises(Er7Error) as raised:
            messages, codec = corpus_messages(name)
            for text in messages:
                parse(text, codec)
        assert raised.value.location == location
        with pytest.raises(their_error):
            _hl7apy(corpus_bytes(name).decode("latin-1"))
        return
    messages, codec = corpus_messages(name)
    assert messages
    for text in messages:
        ours = parse(text, codec)
        if name in HL7APY_CANNOT_READ:
            _why, their_error, expected = HL7APY_CANNOT_READ[name]
            with pytest.raises(their_error):
                _hl7apy(text)
            for (seg, n, c, s, r), value in expected.items():
                found = ours.segment(seg)
                assert found is not None and found.value(n, c, s, r) == value
        else:
            _compare(ours, _hl7apy(text))


def _hl7apy(text: str) -> Any:
    cr_text = text.replace("\r\n", "\r").replace("\n", "\r")
    return parse_message(cr_text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)


def _compare(ours: Er7Message, theirs: Any) -> None:
    for name, fields in MAPPED.items():
        our_segments = ours.segments_named(name)
        their_segments = [s for s in theirs.children if s.name == name]
        assert len(our_segments) == len(their_segments), name
        for mine, other in zip(our_segments, their_segments, strict=True):
            counts = [0, *(len(mine.repetitions(n)) for n in range(1, mine.field_count + 1))]
            by_number = _by_number(list(other.children), counts)
            for n, leaves in fields:
                _compare_field(mine, n, by_number.get(n, []), leaves, ours)


def _compare_field(mine: Segment, n: int, theirs: list[Any], leaves: tuple[tuple[int, int], ...],
                   message: Er7Message) -> None:
    reps = mine.repetitions(n)
    if not theirs:  # hl7apy drops a field that is only blanks
        assert all(not e.raw.strip() for e in reps), f"{mine.name}-{n}"
        return
    assert len(reps) == len(theirs), f"{mine.name}-{n}"
    verbatim = mine.name == "MSH" and n <= 2
    last = n == mine.field_count
    for r, (element, field) in enumerate(zip(reps, theirs, strict=True)):
        for c, s in leaves:
            at = f"{mine.name}-{n}.{c}.{s} repetition {r}"
            expected = _leaf(field, c, s, element)
            raw = element.raw_component(c, s)
            if isinstance(expected, Decimal):
                assert Decimal(raw) == expected, at
                continue
            assert _same(raw, expected, last), at
            value = expected or ""
            if not verbatim:
                value = unescape(value, message.delimiters, message.encoding)
            assert _same(element.component(c, s), value, last), at
            assert _same(mine.value(n, c, s, r), value, last), at


def _same(ours: str, theirs: str | None, last: bool) -> bool:
    """Equal, once hl7apy's whitespace normalisation is applied to our text."""
    if theirs is None:
        return not ours.strip()
    return ours == theirs or (last and ours.rstrip() == theirs)


def _by_number(children: list[Any], our_counts: list[int]) -> dict[int, list[Any]]:
    """hl7apy's children by position.

    Named children carry their position (PID_3, CX_4). hl7apy cannot name a piece its
    version does not define (a withdrawn field, a component past the end of the type); such
    unnamed pieces are given, in order, the positions of our non-blank pieces it left
    unnamed, each taking as many children as we have repetitions there. Their text is then
    compared like any other, so a wrong guess fails.
    """
    named: dict[int, list[Any]] = {}
    unnamed: list[Any] = []
    for child in children:
        number = _number(child.name)
        if number is None:
            unnamed.append(child)
        else:
            named.setdefault(number, []).append(child)
    free = [n for n, count in enumerate(our_counts) if n and count and n not in named]
    for n in free:
        named[n], unnamed = unnamed[: our_counts[n]], unnamed[our_counts[n] :]
    assert not unnamed, "hl7apy has pieces we do not"
    return named


def _number(name: str | None) -> int | None:
    if name is None:
        return None
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _leaf(field: Any, c: int, s: int, element: Element) -> str | Decimal | None:
    """hl7apy's text at component ``c``, sub-component ``s``; None if it has none there.

    A numeric leaf comes back as hl7apy keeps it, a Decimal: it would write "0699999" back
    as "699999", so numbers are compared as numbers.
    """
    pieces = range(1, len(element.components()) + 1)
    component = _child(list(field.children), c, [0, *(_filled(element.subcomponents(i))
                                                       for i in pieces)])
    if component is None:
        return None
    node = _child(list(component.children), s, [0, *(_filled([x])
                                                     for x in element.subcomponents(c))])
    if node is None:
        return None
    value = node.value
    if isinstance(value.value, str | Decimal):
        return value.value
    return str(value.to_er7())  # dates: hl7apy keeps the format it read


def _filled(pieces: list[str]) -> int:
    return 1 if any(p.strip() for p in pieces) else 0


def _child(children: list[Any], position: int, our_counts: list[int]) -> Any | None:
    # Composite types name their children by position (CX_4, HD_2) and leave blanks out;
    # primitive types keep every piece, in order, under the type's name (ST, ST, ...).
    if any(_number(x.name) is not None for x in children):
        found = _by_number(children, our_counts).get(position)
        return found[0] if found else None
    return children[position - 1] if position <= len(children) else None
