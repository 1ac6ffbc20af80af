"""A fast, lazy reader for one HL7 v2 message in ER7 ("pipe and hat") form.

This is the engine's hot path, so work is deferred and done by C-level string methods:
:func:`parse` normalises segment separators with ``str.replace``, splits segments once and
checks the header and segment names; a segment is built, and split into fields, only when it
is asked for; repetitions and components are split only on the way to a value; a value is
unescaped only when it holds the escape character. Every object has ``__slots__``.

The reader is mechanical: it knows delimiters and numbering, not data types or segment
grammar, so a value it returns may still be wrong for its field; the translation layer judges.
Numbering is HL7's: fields, components and sub-components count from 1, repetitions from 0.
In a header segment (MSH, and the batch headers FHS and BHS) field 1 is the field separator
and field 2 the encoding characters, both returned verbatim.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from operator import itemgetter

from engine.errors import MalformedMessage
from inbound.hl7.escapes import unescape

__all__ = ["HL7_NULL", "Delimiters", "Element", "Er7Error", "Er7Message", "Segment", "parse",
           "split_segments"]

#: The HL7 explicit null: a value of exactly two double quotes means "delete this value".
HL7_NULL = '""'

_HEADER_SEGMENTS = frozenset({"MSH", "FHS", "BHS"})
_NAME = itemgetter(slice(0, 3))  # map() with these runs at C speed, a comprehension does not
_HEAD = itemgetter(slice(0, 4))
_CACHE_LIMIT = 4096  # bounds the caches below against senders inventing names


class Er7Error(MalformedMessage):
    """The text cannot be read as HL7 v2 ER7 (header, delimiters, segments or charset)."""


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""  # HL7 v2.7+: optional fifth character of MSH-2

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it should be written back."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


# What earlier messages proved valid, so the common case costs one lookup. Threads may share
# these: each update is a single dict or set operation, atomic under the GIL.
_DELIMITERS: dict[str, Delimiters] = {}  # MSH-1 + MSH-2 -> their delimiters
_SEGMENT_HEADS: dict[str, set[str]] = {}  # field separator -> segment starts already checked


def parse(text: str, encoding: str = "utf-8") -> Er7Message:
    """Read one already-decoded message; raise :class:`Er7Error` if it cannot be read.

    Segments may be separated by CR, LF or CRLF, mixed; blank lines and a leading byte-order
    mark are ignored. ``encoding`` is the Python codec that ``\\Xhh\\`` escapes decode with.
    """
    segments = split_segments(text)
    if not segments:
        raise Er7Error("the message is empty", "MSH")
    delimiters = _delimiters(segments[0])
    segments = _checked(segments, delimiters.field)
    if encoding != "utf-8":
        codecs.lookup(encoding)  # a wrong codec name is our bug: fail here, not on a value
    return Er7Message(segments, delimiters, encoding)


def split_segments(text: str) -> list[str]:
    """Segments of ``text``: BOM dropped, any CR/LF/CRLF separator, no blank lines."""
    if text[:1] == "\ufeff":
        text = text[1:]
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    segments = text.split("\r")
    if "" in segments:
        segments = [s for s in segments if s]
    while segments and segments[-1].isspace():
        segments.pop()
    while segments and segments[0].isspace():
        del segments[0]
    return segments


def _delimiters(msh: str) -> Delimiters:
    if msh[:3] != "MSH":
        raise Er7Error(_not_a_header(msh), "MSH")
    field = msh[3:4]
    end = msh.find(field, 4) if field else -1
    key = msh[3:end] if end > 0 else msh[3:]
    found = _DELIMITERS.get(key)
    if found is None:
        found = _new_delimiters(field, key[1:])
        if len(_DELIMITERS) < _CACHE_LIMIT:
            _DELIMITERS[key] = found
    return found


def _not_a_header(first: str) -> str:
    if first[:1] == "\x0b":
        return "the text still has its MLLP framing (0x0B start block); remove it first"
    if first[:3] in ("FHS", "BHS"):
        return f"the text is a batch ({first[:3]}); split it into messages first"
    return f"the first segment must be the message header MSH, got {first[:3]!r}"


def _new_delimiters(field: str, encoding_characters: str) -> Delimiters:
    if not field:
        raise Er7Error("MSH-1 (the field separator) is missing after 'MSH'", "MSH-1")
    chars = encoding_characters
    if len(chars) not in (4, 5) or len(set(chars)) != len(chars):
        raise Er7Error(
            f"MSH-2 must hold 4 or 5 distinct encoding characters, got {chars!r}", "MSH-2"
        )
    return Delimiters(field, chars[0], chars[1], chars[2], chars[3], chars[4:])


def _checked(segments: list[str], field: str) -> list[str]:
    """``segments`` once every one starts with a segment name; drops whitespace-only lines."""
    heads = list(map(_HEAD, segments))
    known = _SEGMENT_HEADS.get(field)
    # heads[0] is "MSH" + field: the first segment was checked by _delimiters().
    if known is not None and known.issuperset(heads) and heads.count(heads[0]) == 1 and (
            "MSH" not in heads):
        return segments
    known = _SEGMENT_HEADS.setdefault(field, set()) if len(_SEGMENT_HEADS) < 64 else set()
    kept: list[str] = []
    for position, segment in enumerate(segments, 1):
        if segment.isspace():
            continue
        head = segment[:4]
        if head not in known:
            _check_head(head, field, position)
            if len(known) < _CACHE_LIMIT:
                known.add(head)
        if head[:3] == "MSH" and kept:
            raise Er7Error(f"segment {position} starts a second message (MSH); split the "
                           "stream into messages first", f"segment {position}")
        kept.append(segment)
    return kept


def _check_head(head: str, field: str, position: int) -> None:
    name = head[:3]
    if (len(name) == 3 and name.isascii() and name.isalnum() and name[0].isalpha()
            and name == name.upper() and head[3:] in ("", field)):
        return
    raise Er7Error(f"segment {position} must start with a segment name (3 capital letters or "
                   f"digits) followed by {field!r}, got {head!r}", f"segment {position}")


class Er7Message:
    """One parsed message; its segments are built the first time they are asked for."""

    __slots__ = ("_built", "_names", "_raw", "delimiters", "encoding")

    def __init__(self, raw_segments: list[str], delimiters: Delimiters, encoding: str) -> None:
        self.delimiters = delimiters
        self.encoding = encoding
        self._raw = raw_segments
        self._built: list[Segment | None] = [None] * len(raw_segments)
        self._names: list[str] | None = None

    def __repr__(self) -> str:  # never the content: it is patient data
        return f"<Er7Message {len(self._raw)} segments>"

    @property
    def segments(self) -> list[Segment]:
        """Every segment, in order."""
        return [self._built[i] or self._build(i) for i in range(len(self._raw))]

    @property
    def msh(self) -> Segment:
        """The message header."""
        return self._built[0] or self._build(0)

    def segment(self, name: str) -> Segment | None:
        """The first segment called ``name``, or None."""
        try:
            index = (self._names or self._name_all()).index(name)
        except ValueError:
            return None
        return self._built[index] or self._build(index)

    def segments_named(self, name: str) -> list[Segment]:
        """Every segment called ``name``, in order."""
        found = [i for i, each in enumerate(self._names or self._name_all()) if each == name]
        return [self._built[i] or self._build(i) for i in found]

    def to_er7(self) -> str:
        """The message with its segments joined by CR (no trailing CR)."""
        return "\r".join(self._raw)

    def _name_all(self) -> list[str]:
        self._names = list(map(_NAME, self._raw))
        return self._names

    def _build(self, index: int) -> Segment:
        built = self._built[index] = Segment(self._raw[index], self.delimiters, self.encoding)
        return built


class Segment:
    """One segment, split into fields when it is built."""

    __slots__ = ("_d", "_encoding", "_fields", "_header", "name", "raw")

    def __init__(self, raw: str, delimiters: Delimiters, encoding: str = "utf-8") -> None:
        self.raw = raw
        self.name = name = raw[:3]
        self._d = delimiters
        self._encoding = encoding
        self._fields = fields = raw.split(delimiters.field)  # index = field number...
        # ...once a header's MSH-1 is put before MSH-2. Fields up to self._header are
        # answered verbatim: MSH-1 and MSH-2 hold the delimiters themselves.
        self._header = 2 if name in _HEADER_SEGMENTS else 0
        if self._header:
            fields.insert(1, delimiters.field)

    def __repr__(self) -> str:
        return f"<Segment {self.name}>"

    @property
    def field_count(self) -> int:
        """The highest field number written, trailing empty fields included."""
        return len(self._fields) - 1

    def raw_field(self, n: int) -> str:
        """Field ``n`` as written (escaped, all repetitions); "" if absent."""
        if n < 1:
            raise ValueError(f"HL7 field numbers start at 1, got {n}")
        fields = self._fields
        return fields[n] if n < len(fields) else ""

    def value(self, n: int, component: int = 1, subcomponent: int = 1, repetition: int = 0) -> str:
        """The unescaped value at that position; "" if absent, HL7_NULL if it is ``""``.

        Out-of-range positions give "" as absent ones do.
        """
        # The engine's hottest function, hence the length checks and the inlining.
        if n <= self._header:
            return self.raw_value(n, component, subcomponent, repetition)
        fields = self._fields
        if n >= len(fields):  # a length check: raising IndexError costs ten times more
            return ""
        text = fields[n]
        if not text:
            return ""
        d = self._d
        if d.repetition in text:
            parts = text.split(d.repetition)
            text = parts[repetition] if 0 <= repetition < len(parts) else ""
        elif repetition:
            return ""
        if d.component in text:
            parts = text.split(d.component)
            text = parts[component - 1] if 0 < component <= len(parts) else ""
        elif component != 1:
            return ""
        if d.subcomponent in text:
            parts = text.split(d.subcomponent)
            text = parts[subcomponent - 1] if 0 < subcomponent <= len(parts) else ""
        elif subcomponent != 1:
            return ""
        return unescape(text, d, self._encoding) if d.escape in text else text

    def raw_value(self, n: int, component: int = 1, subcomponent: int = 1,
                  repetition: int = 0) -> str:
        """Like :meth:`value` but still escaped."""
        return self.field(n, repetition).raw_component(component, subcomponent)

    def repetitions(self, n: int) -> list[Element]:
        """The repetitions of field ``n``; [] if it is absent or empty."""
        fields = self._fields
        text = fields[n] if 0 < n < len(fields) else self.raw_field(n)  # raw_field raises
        if not text:
            return []
        d = self._d
        if n <= self._header:
            return [_Verbatim(text, d, self._encoding)]
        if d.repetition not in text:
            return [Element(text, d, self._encoding)]
        return [Element(t, d, self._encoding) for t in text.split(d.repetition)]

    def field(self, n: int, repetition: int = 0) -> Element:
        """One repetition of field ``n``; an empty Element if absent."""
        text = self.raw_field(n)
        if n <= self._header:
            return _Verbatim(text if repetition == 0 else "", self._d, self._encoding)
        if self._d.repetition in text:
            parts = text.split(self._d.repetition)
            text = parts[repetition] if 0 <= repetition < len(parts) else ""
        elif repetition:
            text = ""
        return Element(text, self._d, self._encoding)


class Element:
    """One repetition of one field, split into components when it is built."""

    __slots__ = ("_d", "_encoding", "_parts", "_plain", "raw")

    def __init__(self, raw: str, delimiters: Delimiters, encoding: str = "utf-8") -> None:
        self.raw = raw
        self._d = delimiters
        self._encoding = encoding
        self._parts = raw.split(delimiters.component)
        # The common case, no sub-components and nothing to unescape, skips both checks.
        self._plain = delimiters.subcomponent not in raw and delimiters.escape not in raw

    def __repr__(self) -> str:
        return f"<Element {len(self.raw)} chars>"

    @property
    def is_null(self) -> bool:
        """True if the element is exactly the explicit null ``""``."""
        return self.raw == HL7_NULL

    @property
    def is_empty(self) -> bool:
        """True if nothing was written."""
        return not self.raw

    def raw_component(self, i: int, subcomponent: int = 1) -> str:
        """Component ``i``, sub-component ``subcomponent``, still escaped; "" if absent."""
        parts = self._parts
        text = parts[i - 1] if 0 < i <= len(parts) else ""
        separator = self._d.subcomponent
        if separator in text:
            parts = text.split(separator)
            return parts[subcomponent - 1] if 0 < subcomponent <= len(parts) else ""
        return text if subcomponent == 1 else ""

    def component(self, i: int, subcomponent: int = 1) -> str:
        """Component ``i``, sub-component ``subcomponent``, unescaped; "" if absent."""
        # raw_component() written out again: a call costs as much as the work here.
        parts = self._parts
        if not 0 < i <= len(parts):
            return ""
        text = parts[i - 1]
        if self._plain:
            return text if subcomponent == 1 else ""
        d = self._d
        if d.subcomponent in text:
            parts = text.split(d.subcomponent)
            text = parts[subcomponent - 1] if 0 < subcomponent <= len(parts) else ""
        elif subcomponent != 1:
            return ""
        return unescape(text, d, self._encoding) if d.escape in text else text

    def subcomponents(self, i: int) -> list[str]:
        """The unescaped sub-components of component ``i``; [] if it is absent or empty."""
        parts = self._parts
        text = parts[i - 1] if 0 < i <= len(parts) else ""
        return [self._leaf(t) for t in text.split(self._d.subcomponent)] if text else []

    def components(self) -> list[str]:
        """Every component's first sub-component, unescaped; [] if the element is empty."""
        if not self.raw:
            return []
        if self._plain:
            return list(self._parts)
        separator = self._d.subcomponent
        return [self._leaf(c.split(separator, 1)[0]) for c in self._parts]

    def _leaf(self, text: str) -> str:
        return unescape(text, self._d, self._encoding) if self._d.escape in text else text


class _Verbatim(Element):
    """MSH-1 or MSH-2: never split and never unescaped, whatever characters they hold."""

    __slots__ = ()

    def raw_component(self, i: int, subcomponent: int = 1) -> str:
        return self.raw if i == subcomponent == 1 else ""

    def component(self, i: int, subcomponent: int = 1) -> str:
        return self.raw_component(i, subcomponent)

    def subcomponents(self, i: int) -> list[str]:
        return [self.raw] if i == 1 and self.raw else []

    def components(self) -> list[str]:
        return [self.raw] if self.raw else []
