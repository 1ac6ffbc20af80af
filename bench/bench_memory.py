"""Memory of a running engine under mutated input: RSS must stay flat once warm.

Run:  .venv/bin/python bench/bench_memory.py [--fhir 10000] [--hl7 100000] [--sqlite] [--seed 1]

Starts ``portalbridge serve`` (MLLP listener, HTTP API, relay) in its own process on a
throwaway PostgreSQL database (``--sqlite``: a SQLite file), with a FHIR client token, then:

- FHIR: 1,000 mutated bodies to warm up, then ``--fhir`` more (``POST /fhir/Patient`` with
  the token), the process's RSS read from /proc after every tenth of them;
- HL7: 5,000 mutated frames to warm up, then ``--hl7`` more over MLLP on 8 connections, each
  frame answered before the next one on its connection is sent, RSS after every tenth.

Inputs come from ``tests/fuzz/mutate.py`` (corpus messages and resources: flipped and
inserted bytes, cut and repeated ranges, deep nesting, long strings, changed values), seeded.
Every request must get an HTTP answer and every frame an ACK (or the run fails). The table
gives RSS when warm, at the end, the highest seen, and the change from warm to end (goal:
within 10%), with the answers counted by status or ACK code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from _support import create_database, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.fuzz.mutate import fhir_seeds, hl7_seeds, mutate_fhir, mutate_hl7  # noqa: E402
from tests.fuzz.rules import fuzz_rules  # noqa: E402

TOKEN = "bench-memory-token-0123456789"
RULES = fuzz_rules("bench", TOKEN)
CONNECTIONS = 8


class Engine:
    """``portalbridge serve`` in a subprocess, with its RSS."""

    def __init__(self, url: str, folder: Path) -> None:
        (folder / "routing.yaml").write_text(RULES)
        self.http, self.mllp = free_port(), free_port()
        env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": url,
               "PORTALBRIDGE_CONFIG": str(folder / "routing.yaml"),
               "PORTALBRIDGE_HTTP_PORT": str(self.http), "PORTALBRIDGE_MLLP_PORT": str(self.mllp),
               "PORTALBRIDGE_LOG_LEVEL": "CRITICAL"}
        script = str(Path(sys.executable).with_name("portalbridge"))
        subprocess.run([script, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=folder)
        self.process = subprocess.Popen([script, "serve"], env=env, cwd=folder)
        deadline = time.monotonic() + 30
        while not _listening(self.http) or not _listening(self.mllp):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("portalbridge serve did not start")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# -- clients -----------------------------------------------------------------------------------


async def _post_all(port: int, bodies: list[bytes], answers: Counter[str]) -> None:
    """POST each body on one keep-alive connection (reopened when the server closes it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for body in bodies:
        head = (f"POST /fhir/Patient HTTP/1.1\r\nHost: bench\r\nContent-Type: application/fhir+json"
                f"\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        writer.write(head + body)
        status, close = await _read_response(reader)
        answers[status] += 1
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[str, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].split(" ")[1], headers.get("connection", "").lower() == "close"


async def _send_frames(port: int, frames: list[bytes], answers: Counter[str]) -> None:
    """Each frame answered before the next; a connection the listener closes is reopened."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for payload in frames:
        writer.write(b"\x0b" + payload + b"\x1c\r")
        try:
            ack = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 60)
            answers[_ack_code(ack)] += 1
        except TimeoutError:
            Path(f"/tmp/memrepro/noack-{len(payload)}.bin").write_bytes(payload)
            raise
        except (asyncio.IncompleteReadError, ConnectionError):
            answers["closed (framing error)"] += 1  # bytes outside a frame: the rule is to close
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


def _ack_code(ack: bytes) -> str:
    for segment in ack.split(b"\r"):
        if segment[:3] == b"MSA":
            return segment[4:6].decode("latin-1") or "?"
    return "no MSA"


def _in_parallel(count: int, items: list[bytes], one: Callable[..., object], port: int,
                 answers: Counter[str]) -> None:
    async def all_of() -> None:
        await asyncio.gather(*(one(port, items[n::count], answers) for n in range(count)))  # type: ignore[arg-type]
    asyncio.run(all_of())


# -- the run ---------------------------------------------------------------------------------


def measure(engine: Engine, name: str, total: int, warm: int, make: Callable[[], bytes],
            send: Callable[[list[bytes], Counter[str]], None]) -> list[str]:
    answers: Counter[str] = Counter()
    send([make() for _ in range(warm)], Counter())
    start = engine.rss_mb()
    samples = [start]
    step = max(1, total // 10)
    began = time.monotonic()
    for _ in range(0, total, step):
        send([make() for _ in range(step)], answers)
        samples.append(engine.rss_mb())
    elapsed = time.monotonic() - began
    end = samples[-1]
    assert sum(answers.values()) == step * len(samples[1:]), "an input got no answer"
    print(f"  {name}: RSS after each tenth (MB): " + " ".join(f"{s:.0f}" for s in samples), flush=True)
    return [name, f"{total:,}", f"{start:.0f}", f"{end:.0f}", f"{max(samples):.0f}",
            f"{(end - start) / start * 100:+.1f}%", f"{total / elapsed:,.0f}/s",
            ", ".join(f"{k} {v}" for k, v in answers.most_common())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fhir", type=int, default=10_000)
    parser.add_argument("--hl7", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    fhir, hl7 = fhir_seeds(), hl7_seeds(always_acknowledged=True)
    with tempfile.TemporaryDirectory() as folder:
        if args.sqlite:
            url, drop = f"sqlite:///{folder}/portalbridge.db", (lambda: None)
        else:
            url, drop = create_database("pb_bench_memory")
        engine = Engine(url, Path(folder))
        try:
            rows = [measure(engine, "FHIR bodies", args.fhir, 1000, lambda: mutate_fhir(fhir, rng),
                            lambda items, answers: _in_parallel(4, items, _post_all, engine.http, answers)),
                    measure(engine, "HL7 frames", args.hl7, 5000, lambda: mutate_hl7(hl7, rng),
                            lambda items, answers: _in_parallel(CONNECTIONS, items, _send_frames,
                                                                engine.mllp, answers))]
        finally:
            engine.stop()
            drop()
    print(f"\nportalbridge serve on {'SQLite' if args.sqlite else 'PostgreSQL'}, seed {args.seed}")
    header = ["input (mutated)", "count", "RSS warm MB", "RSS end MB", "max MB", "change", "rate", "answers"]
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1])


if __name__ == "__main__":
    main()
