"""Seeded random messages: whatever is written with escapes must be read back exactly.

A small generator (no Hypothesis here) builds segments of fields of repetitions of
components of sub-components holding text drawn from an alphabet that includes every
delimiter, writes them with random distinct delimiters, escaping what must be escaped, and
random CR / LF / CRLF separators; the reader must return every leaf unchanged.
"""

from __future__ import annotations

import random

import pytest

from inbound.hl7 import Delimiters, parse

Tree = list[list[list[list[str]]]]  # field -> repetition -> component -> sub-component

PUNCTUATION = "|^~\\&#!$%*@?+:;=/"
LETTERS = "AZaz09 .-é"


def random_delimiters(rng: random.Random) -> Delimiters:
    chars = rng.sample(PUNCTUATION, 6)
    truncation = chars[5] if rng.random() < 0.3 else ""
    return Delimiters(chars[0], chars[1], chars[2], chars[3], chars[4], truncation)


def random_text(rng: random.Random, d: Delimiters) -> str:
    alphabet = LETTERS + d.field + d.component + d.repetition + d.escape + d.subcomponent
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
    return "x" if text == '""' else text  # '""' reads back as the explicit null, by design


def random_tree(rng: random.Random, d: Delimiters) -> Tree:
    return [[[[random_text(rng, d) for _ in range(rng.randint(1, 3))]
              for _ in range(rng.randint(1, 4))]
             for _ in range(rng.randint(1, 3))]
            for _ in range(rng.randint(1, 8))]


def escape(text: str, d: Delimiters) -> str:
    e = d.escape
    out = text.replace(e, "\0")  # first, so the escapes added below stay intact
    for char, letter in ((d.field, "F"), (d.component, "S"), (d.subcomponent, "T"),
                         (d.repetition, "R")):
        out = out.replace(char, f"{e}{letter}{e}")
    return out.replace("\0", f"{e}E{e}")


def write(tree: Tree, d: Delimiters) -> str:
    return d.field.join(
        d.repetition.join(
            d.component.join(d.subcomponent.join(escape(s, d) for s in component)
                             for component in repetition)
            for repetition in field)
        for field in tree)


@pytest.mark.parametrize("seed", range(40))
def test_written_values_read_back(seed: int) -> None:
    rng = random.Random(seed)
    d = random_delimiters(rng)
    segments = {f"Z{n:02d}": random_tree(rng, d) for n in range(rng.randint(1, 5))}
    header = f"MSH{d.field}{d.encoding_characters}{d.field}APP"
    lines = [header] + [name + d.field + write(tree, d) for name, tree in segments.items()]
    text = "".join(line + rng.choice(["\r", "\n", "\r\n"]) for line in lines)
    message = parse(text)
    assert message.delimiters == d
    assert message.msh.value(3) == "APP" and message.msh.value(2) == d.encoding_characters
    for name, tree in segments.items():
        segment = message.segment(name)
        assert segment is not None and segment.field_count == len(tree)
        for n, field in enumerate(tree, 1):
            check_field(segment.repetitions(n), field, segment, n)


def check_field(elements: list, field: list[list[list[str]]], segment: object, n: int) -> None:  # type: ignore[type-arg]
    if field == [[[""]]]:
        assert elements == []
        return
    assert len(elements) == len(field)
    for r, (element, repetition) in enumerate(zip(elements, field, strict=True)):
        empty = repetition == [[""]]
        assert element.is_empty == empty
        assert element.components() == ([] if empty else [component[0] for component in repetition])
        for c, component in enumerate(repetition, 1):
            assert element.subcomponents(c) == (component if component != [""] else [])
            for s, expected in enumerate(component, 1):
                assert element.component(c, s) == expected
                assert segment.value(n, c, s, r) == expected  # type: ignore[attr-defined]
