"""Throughput of our ER7 reader against plain splitting, python-hl7 and hl7apy.

Run from the repository root (about 35 s with the default)::

    .venv/bin/python bench/bench_reader.py [--seconds 8]

Every implementation parses the same ~2 KB ADT^A01 and reads the fields the translation layer
maps (MSH, EVN, PID, MRG, PD1; every repetition of the repeating ones), one implementation
after the other in this one process. Each gets ``--seconds`` of short timed rounds; the table
shows the BEST round (the speed of the code) and the MEDIAN round (what a busy, shared host
gives). Before timing, the values every library returns are compared with ours, so a fast
wrong answer shows up as a warning.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hl7  # noqa: E402
from hl7apy.consts import VALIDATION_LEVEL  # noqa: E402
from hl7apy.parser import parse_message  # noqa: E402

import inbound.hl7.reader as reader  # noqa: E402
from inbound.hl7 import Element, parse  # noqa: E402

SAMPLE = ROOT / "tests/samples/corpus/hl7v2/ms-fhir-converter/adt_a01_v28_full.hl7"
ROUND = 0.05  # seconds per timed round
KEEP = ("MSH", "EVN", "PID", "PD1", "ARV", "AL1", "DG1")  # trims the 8.5 KB sample to ~2 KB

#: segment -> (field, component) read once, first repetition.
SINGLE = {
    "MSH": ((3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (9, 1), (9, 2), (9, 3), (10, 1), (11, 1),
            (12, 1), (15, 1), (16, 1), (18, 1)),
    "EVN": ((1, 1), (2, 1), (6, 1)),
    "PID": ((2, 1), (4, 1), (6, 1), (7, 1), (8, 1), (19, 1), (29, 1), (30, 1)),
    "MRG": ((7, 1),),
    "PD1": ((3, 1), (4, 1)),
}
CX = ((1, 1), (4, 1), (4, 2), (4, 3), (5, 1))
XPN = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (7, 1))
XAD = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1))
XTN = tuple((c, 1) for c in range(1, 9))
#: segment -> field -> (component, sub-component) read for every repetition.
REPEATING: dict[str, dict[int, tuple[tuple[int, int], ...]]] = {
    "PID": {3: CX, 5: XPN, 11: XAD, 13: XTN, 14: XTN}, "MRG": {1: CX}}


def sample_message() -> str:
    text = SAMPLE.read_bytes().decode("utf-8")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s[:3] in KEEP]
    return "\r".join(segments) + "\r"


def physical(text: str) -> list[str]:
    """The floor: split segments and fields, nothing else."""
    out: list[str] = []
    for segment in text.split("\r"):
        out.extend(segment.split("|"))
    return out


def ours(text: str) -> list[str]:
    """Written the way the translation layer reads: straight-line, one helper per data type."""
    message = parse(text)
    msh = message.msh
    out = [msh.value(3), msh.value(4), msh.value(5), msh.value(6), msh.value(7),
           msh.value(9, 1), msh.value(9, 2), msh.value(9, 3), msh.value(10), msh.value(11),
           msh.value(12), msh.value(15), msh.value(16), msh.value(18)]
    evn = message.segment("EVN")
    if evn is not None:
        out += (evn.value(1), evn.value(2), evn.value(6))
    pid = message.segment("PID")
    if pid is not None:
        out += (pid.value(2), pid.value(4), pid.value(6), pid.value(7), pid.value(8),
                pid.value(19), pid.value(29), pid.value(30))
        for element in pid.repetitions(3):
            out += _cx(element)
        for element in pid.repetitions(5):
            out += _xpn(element)
        for element in pid.repetitions(11):
            out += _xad(element)
        for element in pid.repetitions(13) + pid.repetitions(14):
            out += _xtn(element)
    mrg = message.segment("MRG")
    if mrg is not None:
        out.append(mrg.value(7))
        for element in mrg.repetitions(1):
            out += _cx(element)
    pd1 = message.segment("PD1")
    if pd1 is not None:
        out += (pd1.value(3), pd1.value(4))
    return out


def _cx(e: Element) -> tuple[str, ...]:
    return (e.component(1), e.component(4, 1), e.component(4, 2), e.component(4, 3),
            e.component(5))


def _xpn(e: Element) -> tuple[str, ...]:
    return (e.component(1), e.component(2), e.component(3), e.component(4), e.component(5),
            e.component(7))


def _xad(e: Element) -> tuple[str, ...]:
    return (e.component(1), e.component(2), e.component(3), e.component(4), e.component(5),
            e.component(6), e.component(7))


def _xtn(e: Element) -> tuple[str, ...]:
    return (e.component(1), e.component(2), e.component(3), e.component(4), e.component(5),
            e.component(6), e.component(7), e.component(8))


def python_hl7(text: str) -> list[str]:
    message = hl7.parse(text)
    out: list[str] = []
    for name, positions in SINGLE.items():
        segment = _phl7_segment(message, name)
        if segment is not None:
            for n, c in positions:
                out.append(_phl7_value(segment, n, 1, c, 1))
            for n, leaves in REPEATING.get(name, {}).items():
                count = len(segment(n)) if n < len(segment) and str(segment(n)) else 0
                for r in range(1, count + 1):
                    for c, s in leaves:
                        out.append(_phl7_value(segment, n, r, c, s))
    return out


def _phl7_segment(message: hl7.Message, name: str) -> hl7.Segment | None:
    try:
        return message.segment(name)
    except KeyError:
        return None


def _phl7_value(segment: hl7.Segment, n: int, r: int, c: int, s: int) -> str:
    try:
        return str(segment.extract_field(1, n, r, c, s))
    except IndexError:  # python-hl7's answer for "that component is not there"
        return ""


def hl7apy(text: str) -> list[str]:
    message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    out: list[str] = []
    for name, positions in SINGLE.items():
        segment = _apy_segment(message, name)
        if segment is not None:
            for n, c in positions:
                reps = _apy_reps(segment, n)
                out.append(_apy_leaf(reps[0], c, 1) if reps else "")
            for n, leaves in REPEATING.get(name, {}).items():
                for field in _apy_reps(segment, n):
                    for c, s in leaves:
                        out.append(_apy_leaf(field, c, s))
    return out


def _apy_segment(message: Any, name: str) -> Any | None:
    return next((s for s in message.children if s.name == name), None)


def _apy_reps(segment: Any, n: int) -> list[Any]:
    """The repetitions of field ``n``. hl7apy leaves a field its version withdrew (EVN-1 in
    v2.8) unnamed; like any hl7apy user we take it as the number before the next named one."""
    found: list[Any] = []
    following = None
    for field in reversed(segment.children):
        number = _apy_index(field.name) if field.name else (following or 1) - 1
        following = number
        if number == n:
            found.insert(0, field)
    return found


def _apy_index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def _apy_leaf(element: Any, c: int, s: int) -> str:
    for position in (c, s):
        children = [x for x in element.children if x.name and _apy_index(x.name) == position]
        if not children:
            return ""
        element = children[0]
    value = element.value
    return value.value if isinstance(value.value, str) else str(value.to_er7())


def rates(function: Callable[[str], object], text: str, seconds: float) -> tuple[float, float]:
    """(best, median) messages/s over rounds of about ``ROUND`` seconds for ``seconds``.

    Short rounds, because this host slows down in bursts (shared CPU): the best round is the
    speed of the code, the median shows what a busy host gives.
    """
    started = time.perf_counter()
    function(text)  # warm up, and calibrate how many calls fill one round
    per_round = max(1, int(ROUND / max(time.perf_counter() - started, 1e-9)))
    results: list[float] = []
    deadline = time.perf_counter() + seconds
    while not results or time.perf_counter() < deadline:
        begin = time.perf_counter()
        for _ in range(per_round):
            function(text)
        results.append(per_round / (time.perf_counter() - begin))
    return max(results), statistics.median(results)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=8.0,
                         help="time spent on each implementation (default 8)")
    seconds = options.parse_args().seconds
    text = sample_message()
    reference = ours(text)
    compiled = not str(reader.__file__).endswith(".py")
    print(f"message: {len(text.encode())} bytes, {text.count(chr(13))} segments, "
          f"{len(reference)} values read; {seconds:g} s per implementation in "
          f"rounds of {ROUND:g} s; reader {'compiled' if compiled else 'pure Python'}")
    for name, function in (("python-hl7", python_hl7), ("hl7apy", hl7apy)):
        if function(text) != reference:
            print(f"WARNING: {name} returned different values than our reader")
    results = [(name, *rates(function, text, seconds)) for name, function in (
        ("str.split (physical floor)", physical), ("portalbridge reader", ours),
        ("python-hl7 hl7.parse", python_hl7), ("hl7apy parse_message", hl7apy))]
    best_baseline, median_baseline = results[2][1], results[2][2]
    print(f"{'implementation':<28} {'best msg/s':>11} {'µs/msg':>8} {'x p-hl7':>8} "
          f"{'median msg/s':>13} {'µs/msg':>8} {'x p-hl7':>8}")
    for name, best, median in results:
        print(f"{name:<28} {best:>11,.0f} {1e6 / best:>8.1f} {best / best_baseline:>7.1f}x "
              f"{median:>13,.0f} {1e6 / median:>8.1f} {median / median_baseline:>7.1f}x")


if __name__ == "__main__":
    main()
