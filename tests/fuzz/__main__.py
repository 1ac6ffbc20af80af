"""Fuzz the readers with seeded mutations of the corpus: ``python -m tests.fuzz [--long]``.

Targets and properties are in ``tests/fuzz/targets.py``, inputs in ``tests/fuzz/mutate.py``.
The default run tries 20,000 inputs per target (about a minute); ``--long`` tries 1,000,000
for the ER7 reader, the MLLP decoder and the receiver path (every frame answered) and
100,000 for the FHIR API, and reports the process's RSS before and after the receiver and
FHIR runs (after a warm-up). A failing input is written to ``fuzz-failures/`` (its target,
seed and number in the file name) and the run exits 1; the hypothesis tests in
``tests/fuzz/test_properties.py`` keep each fixed crash as a regression.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RejectedMessage
from tests.fuzz.mutate import fhir_seeds, hl7_seeds, mutate_fhir, mutate_hl7, mutate_stream
from tests.fuzz.targets import FhirEndpoint, Receiver, decode_stream, read_hl7

FAILURES = Path("fuzz-failures")


@dataclass
class Result:
    target: str
    inputs: int = 0
    failures: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rss_before: float | None = None
    rss_after: float | None = None
    seconds: float = 0.0


def rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(target: str, count: int, seed: int, one: Callable[[random.Random], tuple[str, bytes]],
        *, warm: int = 0, measure: bool = False) -> Result:
    """Feed ``count`` inputs; ``one`` makes an input, tries it and returns (outcome, input)."""
    rng = random.Random(f"{seed}-{target}")
    for _ in range(warm):
        one(rng)
    result = Result(target, rss_before=rss_mb() if measure else None)
    began = time.monotonic()
    for number in range(count):
        state = rng.getstate()
        try:
            outcome, _ = one(rng)
            result.outcomes[outcome] += 1
        except Exception:  # noqa: BLE001 - every unexpected exception is a finding
            result.failures += 1
            _keep(target, seed, number, state)
        result.inputs += 1
        if count >= 10 and (number + 1) % (count // 10) == 0:
            print(f"  {target}: {number + 1:,} of {count:,}, {result.failures} failures", flush=True)
    result.seconds = time.monotonic() - began
    result.rss_after = rss_mb() if measure else None
    return result


def _keep(target: str, seed: int, number: int, state: object) -> None:
    """Write the failing input (remade from the generator's state) and its traceback."""
    FAILURES.mkdir(exist_ok=True)
    rng = random.Random()
    rng.setstate(state)  # type: ignore[arg-type]
    stem = FAILURES / f"{target}-seed{seed}-{number}"
    stem.with_suffix(".txt").write_text(traceback.format_exc())
    print(f"  FAILURE {target} #{number}: {traceback.format_exc().splitlines()[-1]} "
          f"(input and traceback in {stem}.*)", flush=True)
    _remade[target](rng, stem)


_remade: dict[str, Callable[[random.Random, Path], None]] = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--long", action="store_true", help="1,000,000 inputs per reader")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inputs", type=int, help="inputs per target (overrides the run's size)")
    args = parser.parse_args(argv)
    big = args.inputs or (1_000_000 if args.long else 20_000)
    fhir_count = args.inputs or (100_000 if args.long else 2_000)
    hl7, acknowledged, fhir = hl7_seeds(), hl7_seeds(always_acknowledged=True), fhir_seeds()
    receiver, endpoint = Receiver(), FhirEndpoint()

    def reader(rng: random.Random) -> tuple[str, bytes]:
        data = mutate_hl7(hl7, rng)
        try:
            read_hl7(data)
        except RejectedMessage:
            return "refused (AR)", data
        return "read", data

    def decoder(rng: random.Random) -> tuple[str, bytes]:
        stream = mutate_stream(hl7, rng)
        cuts = [rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 6))]
        frames = decode_stream(stream, cuts)
        return ("framing error" if "framing error" in frames else f"{min(len(frames), 4)} frames"), stream

    def answered(rng: random.Random) -> tuple[str, bytes]:
        data = mutate_hl7(acknowledged, rng)
        replies = receiver.answer(data)
        return (_ack_code(replies[0]) if replies else "none asked"), data

    def posted(rng: random.Random) -> tuple[str, bytes]:
        body = mutate_fhir(fhir, rng)
        return str(endpoint.post(body)), body

    _remade.update({
        "reader": lambda rng, stem: stem.with_suffix(".hl7").write_bytes(mutate_hl7(hl7, rng)),
        "decoder": lambda rng, stem: stem.with_suffix(".bin").write_bytes(mutate_stream(hl7, rng)),
        "receiver": lambda rng, stem: stem.with_suffix(".hl7").write_bytes(mutate_hl7(acknowledged, rng)),
        "fhir": lambda rng, stem: stem.with_suffix(".json").write_bytes(mutate_fhir(fhir, rng)),
    })
    print(f"fuzzing with seed {args.seed}: {big:,} inputs for the reader, decoder and receiver, "
          f"{fhir_count:,} for FHIR", flush=True)
    results = [run("reader", big, args.seed, reader), run("decoder", big, args.seed, decoder),
               run("receiver", big, args.seed, answered, warm=min(big, 20_000), measure=True),
               run("fhir", fhir_count, args.seed, posted, warm=min(fhir_count, 2_000), measure=True)]
    receiver.close()
    endpoint.close()
    _report(results)
    return 1 if any(r.failures for r in results) else 0


def _ack_code(reply: bytes) -> str:
    """MSA-1 of an acknowledgement in its own delimiters ("batch" for a BHS envelope)."""
    separator = reply[3:4]
    for segment in reply.split(b"\r"):
        if segment[:3] == b"MSA":
            return segment[4:].split(separator, 1)[0].decode("latin-1")
    return "batch" if reply.startswith(b"BHS") else "?"


def _report(results: list[Result]) -> None:
    print("\ntarget     inputs      failures  seconds  RSS before -> after (MB)  outcomes")
    for r in results:
        rss = (f"{r.rss_before:.0f} -> {r.rss_after:.0f} ({(r.rss_after - r.rss_before) / r.rss_before:+.1%})"
               if r.rss_before and r.rss_after else "-")
        outcomes = ", ".join(f"{k} {v:,}" for k, v in r.outcomes.most_common(6))
        print(f"{r.target:<10} {r.inputs:<11,} {r.failures:<9} {r.seconds:<8.0f} {rss:<25} {outcomes}")


if __name__ == "__main__":
    sys.exit(main())
