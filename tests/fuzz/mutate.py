"""Seeded mutations of real messages: the inputs of the fuzz runs and the memory measurements.

Each mutator takes valid bytes (corpus HL7 v2 messages, FHIR Patients) and breaks them the
way senders and attackers do: flipped and inserted bytes (delimiters, framing bytes, NUL,
invalid UTF-8), cut, repeated and spliced ranges, and for JSON, structure: deep nesting,
long strings, huge numbers, duplicate keys, wrong types. A ``random.Random`` seeded by the
caller drives everything, so a failing input is reproduced by its seed and number.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["fhir_seeds", "hl7_seeds", "mutate_bytes", "mutate_fhir", "mutate_hl7", "mutate_stream"]

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "corpus"
_MAX_TEXT = 1_200_000  # a little over the API's default body limit of 1 MiB
#: Bytes that mean something to HL7 v2, MLLP or a decoder.
_SPECIAL = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\x1c\r", b"\x00",
            b"\xff", b"\xc3", b"\xef\xbb\xbf", b"MSH|", b"\\X0D\\", b"\\E\\", b'""', b"\r\r",
            b"FHS|", b"BHS|", b"MSH|^~\\&|", b"\xe2\x80", b"\t"]


def hl7_seeds(*, always_acknowledged: bool = False) -> list[bytes]:
    """Every message-bearing file of the HL7 v2 corpus, unframed, as bytes.

    ``always_acknowledged`` empties MSH-15 and MSH-16 (original mode), so that every message
    is answered: in enhanced mode a sender may ask for no acknowledgement at all (``NE``).
    """
    seeds = []
    for path in sorted((CORPUS / "hl7v2").rglob("*.hl7")):
        raw = path.read_bytes()
        if raw.startswith(b"\x0b"):
            raw = raw[1:].removesuffix(b"\r").removesuffix(b"\x1c")
        seeds.append(_original_mode(raw) if always_acknowledged else raw)
    return seeds


def _original_mode(message: bytes) -> bytes:
    start = message.find(b"MSH")
    if start < 0 or len(message) < start + 4:
        return message
    end = min((i for i in (message.find(b"\r", start), message.find(b"\n", start)) if i >= 0),
              default=len(message))
    fields = message[start:end].split(message[start + 3:start + 4])
    fields[14:16] = [b""] * len(fields[14:16])
    return message[:start] + message[start + 3:start + 4].join(fields) + message[end:]


def fhir_seeds() -> list[bytes]:
    """Every JSON file of the FHIR corpus."""
    return [p.read_bytes() for p in sorted((CORPUS / "fhir").rglob("*.json"))]


def mutate_bytes(data: bytes, rng: random.Random, rounds: int | None = None) -> bytes:
    """``data`` with 1-4 (or ``rounds``) byte-level mutations."""
    buffer = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        rng.choice(_BYTE_MUTATORS)(buffer, rng)
    return bytes(buffer)


def mutate_hl7(seeds: list[bytes], rng: random.Random) -> bytes:
    """A corpus message, mutated (sometimes spliced with another message)."""
    data = rng.choice(seeds)
    if rng.random() < 0.1:
        other = rng.choice(seeds)
        data = data[:rng.randint(0, len(data))] + other[rng.randint(0, len(other)):]
    return mutate_bytes(data, rng)


def mutate_stream(seeds: list[bytes], rng: random.Random) -> bytes:
    """An MLLP byte stream: a few frames, some broken, with junk and framing bytes mutated."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        payload = rng.choice(seeds)[:rng.randint(0, 3000)]
        parts.append(b"\x0b" + payload + rng.choice([b"\x1c\r", b"\x1c", b"", b"\x1c\r\n"]))
    stream = rng.choice([b"", b"\r\n", b" "]).join(parts)
    return mutate_bytes(stream, rng) if rng.random() < 0.7 else stream


def mutate_fhir(seeds: list[bytes], rng: random.Random) -> bytes:
    """A corpus resource, mutated as bytes, as a JSON structure, or in its values only (a new
    MRN each time, so many of these are valid writes of varied shapes)."""
    data = rng.choice(seeds)
    mode = rng.random()
    if mode < 0.35:
        return mutate_bytes(data, rng)
    try:
        tree = json.loads(data.decode("utf-8-sig"))
    except ValueError:
        return mutate_bytes(data, rng)
    if mode < 0.7:
        for _ in range(rng.randint(1, 3)):
            tree = _mutate_tree(tree, rng)
    elif isinstance(tree, dict):
        tree.pop("id", None)
        tree["identifier"] = [{"system": "urn:oid:1.2.36.146.595.217.0.1",
                               "value": f"FZ{rng.getrandbits(48):x}"}, *(tree.get("identifier") or [])]
        _mutate_values(tree, rng)
    text = json.dumps(tree, ensure_ascii=rng.random() < 0.5)
    text = _write_nesting(text[:_MAX_TEXT])[:_MAX_TEXT]  # over the limit is one case, not many
    if rng.random() < 0.15:  # what json.dumps cannot write: a repeated key
        text = text.replace('{"', '{"birthDate": "1970-01-01", "', 1).replace(
            '{"', '{"birthDate": "1999-12-31", "', 1)
    return text.encode("utf-8")


def _mutate_tree(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict) and node and rng.random() < 0.7:
        key = rng.choice(list(node))
        node[key] = _mutate_tree(node[key], rng)
        return node
    if isinstance(node, list) and node and rng.random() < 0.7:
        index = rng.randrange(len(node))
        node[index] = _mutate_tree(node[index], rng)
        return node
    return rng.choice(_TREE_MUTATORS)(node, rng)


def _mutate_values(node: Any, rng: random.Random) -> None:
    """Change strings and repeat array items in place, keeping the structure."""
    items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, value in items:
        if key == "resourceType":
            continue
        if isinstance(value, str) and rng.random() < 0.15:
            node[key] = rng.choice([value * rng.randint(2, 40), value + "\x00", value.upper(),
                                    "\u00e9\u4e2d" * rng.randint(1, 120), value[:1], "", " "])
        elif isinstance(value, dict | list):
            _mutate_values(value, rng)
    if isinstance(node, list) and node and rng.random() < 0.1:
        node.extend(json.loads(json.dumps(node[0])) for _ in range(rng.randint(1, 30)))


def _nest(node: Any, rng: random.Random) -> Any:
    """A placeholder for deep nesting, written into the text after ``json.dumps`` (which
    cannot write what ``json.loads`` cannot read)."""
    return f"\x01NEST{rng.choice([11, 100, 499, 990, 1001, 5000, 100_001])}\x01"


def _write_nesting(text: str) -> str:
    while (start := text.find('"\\u0001NEST')) >= 0:
        end = text.index('\\u0001"', start)
        depth = int(text[start + 11:end])
        opener, closer = ('[', ']') if depth % 2 else ('{"a":', '}')
        text = text[:start] + opener * depth + "0" + closer * depth + text[end + 7:]
    return text


_TREE_MUTATORS: list[Callable[[Any, random.Random], Any]] = [
    _nest,
    lambda node, rng: "x" * rng.choice([300, 5000, 100_000]),
    lambda node, rng: rng.choice([10 ** 400, -(2 ** 80), 1e308, 0.1, True, None, "", [], {}]),
    lambda node, rng: [node] * rng.randint(2, 20),
    lambda node, rng: {"resourceType": "Patient", "id": node},
    lambda node, rng: "\x00\ud7ff\u2028" + str(node)[:50],
]


def _flip(buffer: bytearray, rng: random.Random) -> None:
    if buffer:
        buffer[rng.randrange(len(buffer))] = rng.randrange(256)


def _insert(buffer: bytearray, rng: random.Random) -> None:
    at = rng.randint(0, len(buffer))
    buffer[at:at] = rng.choice(_SPECIAL) * rng.choice([1, 1, 2, 50])


def _delete(buffer: bytearray, rng: random.Random) -> None:
    if buffer:
        at = rng.randrange(len(buffer))
        del buffer[at:at + rng.randint(1, 64)]


def _repeat(buffer: bytearray, rng: random.Random) -> None:
    if buffer:
        at = rng.randrange(len(buffer))
        piece = buffer[at:at + rng.randint(1, 200)]
        buffer[at:at] = piece * rng.randint(1, 20)


def _truncate(buffer: bytearray, rng: random.Random) -> None:
    del buffer[rng.randint(0, len(buffer)):]


_BYTE_MUTATORS: list[Callable[[bytearray, random.Random], None]] = [
    _flip, _flip, _insert, _insert, _insert, _delete, _repeat, _truncate]
