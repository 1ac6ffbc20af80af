"""Bytes to text for HL7 v2: byte-order marks, MSH-18 (HL7 table 0211) and a fallback.

MSH-18 can be read before the bytes are decoded because every character set HL7 allows for
v2 ER7, except UTF-16 and UTF-32, writes the ASCII header bytes unchanged. Wide encodings are
recognised by their byte-order mark or, without one, by the zero bytes around "MSH".
"""

from __future__ import annotations

import codecs

from inbound.hl7.reader import Er7Error

__all__ = ["HL7_CHARSETS", "codec_for", "declared_charset", "decode_message"]

_ISO_8859 = {f"8859/{n}": f"iso8859-{n}" for n in (*range(1, 10), 15)}

#: HL7 table 0211 (and the spellings senders use instead) -> Python codec. Keys are compact:
#: upper case without spaces, hyphens or underscores, so "unicode utf-8" finds "UNICODEUTF8".
HL7_CHARSETS: dict[str, str] = {
    "ASCII": "ascii", "USASCII": "ascii", "ISOIR6": "ascii",
    **_ISO_8859,
    **{"ISO" + key: codec for key, codec in _ISO_8859.items()},  # "ISO 8859/1"
    **{"ISO" + key.replace("/", ""): codec for key, codec in _ISO_8859.items()},  # ISO-8859-1
    "LATIN1": "iso8859-1", "ISOIR100": "iso8859-1",
    "WINDOWS1252": "cp1252", "CP1252": "cp1252",
    "UNICODE": "utf-8", "UNICODEUTF8": "utf-8", "UTF8": "utf-8",
    "UNICODEUTF16": "utf-16", "UTF16": "utf-16",
    "UNICODEUTF32": "utf-32", "UTF32": "utf-32",
    # JIS X 0201 (IR14) and JIS X 0208 (IR87) travel as ISO 2022 escape sequences;
    # JIS X 0212 (IR159) needs the ISO-2022-JP-2 repertoire.
    "ISOIR14": "iso2022_jp", "ISOIR87": "iso2022_jp", "ISOIR159": "iso2022_jp_2",
    "GB180302000": "gb18030", "GB18030": "gb18030",
    "KSX1001": "euc_kr",
    "BIG5": "big5",
}
#: Known to HL7 but without a Python codec: rejected with a reason, not as "unknown".
_UNSUPPORTED = {"CNS116431992": "CNS 11643-1992 (EUC-TW)"}

_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_message(raw: bytes, fallback: str | None = "cp1252") -> tuple[str, str]:
    """Decode ``raw`` and return ``(text, codec)``; ``codec`` is what ``\\X..\\`` escapes use.

    A byte-order mark decides (and is removed); otherwise MSH-18 decides and the bytes must
    be valid in it; otherwise UTF-8, and if the bytes are not UTF-8, ``fallback`` (None
    refuses). Raises :class:`~inbound.hl7.reader.Er7Error` located at MSH-18.
    """
    codec, body = _sniff_wide(raw)
    if codec:
        return _decode(body, codec, f"{codec.upper()}, as its first bytes show"), codec
    declared = declared_charset(body)
    if declared:
        codec = codec_for(declared)
        if codec in ("utf-16", "utf-32"):
            raise Er7Error(f"MSH-18 declares {declared!r}, but the message is single-byte text "
                           "(its header reads as ASCII)", "MSH-18")
        return _decode(body, codec, f"{declared!r} as declared in MSH-18"), codec
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if fallback is None:
            raise Er7Error(f"the bytes are not UTF-8 ({_where(exc)}) and MSH-18 names no "
                           "character set", "MSH-18") from None
    codec = codecs.lookup(fallback).name
    return _decode(body, codec, f"UTF-8 or the fallback {codec}"), codec


def codec_for(charset: str) -> str:
    """The Python codec for an MSH-18 value; :class:`Er7Error` if HL7 has no such set."""
    key = "".join(charset.split()).upper().replace("-", "").replace("_", "")
    codec = HL7_CHARSETS.get(key)
    if codec is not None:
        return codec
    if key in _UNSUPPORTED:
        raise Er7Error(f"MSH-18 character set {_UNSUPPORTED[key]} is not supported", "MSH-18")
    raise Er7Error(f"MSH-18 names an unknown character set {charset!r} (see HL7 table 0211)",
                   "MSH-18")


def declared_charset(raw: bytes) -> str:
    """MSH-18 (first repetition, first component) of the first MSH in ``raw``; "" if none."""
    start = 0 if raw.startswith(b"MSH") else _segment_start(raw, b"MSH")
    if start < 0:
        return ""
    end = min((i for i in (raw.find(b"\r", start), raw.find(b"\n", start)) if i >= 0),
              default=len(raw))
    header = raw[start:end].decode("latin-1")  # any bytes; the ASCII ones keep their meaning
    field = header[3:4]
    fields = header.split(field) if field else []
    if len(fields) < 18:
        return ""
    component, repetition = fields[1][:1], fields[1][1:2]
    value = fields[17]
    if repetition:
        value = value.split(repetition)[0]
    if component:
        value = value.split(component)[0]
    value = value.strip()
    return "" if value == '""' else value


def _segment_start(raw: bytes, name: bytes) -> int:
    found = [i + 1 for i in (raw.find(b"\r" + name), raw.find(b"\n" + name)) if i >= 0]
    return min(found, default=-1)


def _sniff_wide(raw: bytes) -> tuple[str, bytes]:
    """A codec chosen by byte-order mark (mark removed) or by zero bytes; else ``""``."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return codec, raw[len(bom) :]
    # HL7 text starts with a letter, so zero bytes among the first four mean a wide encoding.
    head = raw[:4]
    if len(head) < 4 or 0 not in head:
        return "", raw
    if head[0] and not any(head[1:]):
        return "utf-32-le", raw
    if head[3] and not any(head[:3]):
        return "utf-32-be", raw
    if head[0] and not head[1]:
        return "utf-16-le", raw
    if head[1] and not head[0]:
        return "utf-16-be", raw
    return "", raw


def _decode(body: bytes, codec: str, what: str) -> str:
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        raise Er7Error(f"the bytes are not valid {what}: {_where(exc)}", "MSH-18") from None


def _where(exc: UnicodeDecodeError) -> str:
    return f"byte 0x{exc.object[exc.start]:02X} at offset {exc.start}"
