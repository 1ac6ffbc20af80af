"""End to end on PostgreSQL: MLLP send -> parse -> route -> commit -> ACK received.

Run:  .venv/bin/python bench/bench_mllp.py [--messages 4000] [--connections 1,16]

Prints one table. Every row uses the same client (asyncio, one task per connection, each
sending its next message only after the previous ACK, as an EMR interface does) and the
same ~1.3 KB ADT^A08 messages with distinct control ids and MRNs. Rows:

- ``mllp echo``: a server that answers each frame at once: the client and network ceiling.
- ``pg commit/msg``: raw psycopg, one INSERT + COMMIT per message on one connection per
  client connection: what a naive engine that commits each message alone can reach.
- ``portalbridge listen``: the engine in its own process (``portalbridge listen``), every
  ACK sent only after its message's transaction committed (group commit across connections),
  once per message-journal setting (``--journal``, default ``off,encrypt``): ``off``
  (``journal.enabled: false``, the reference), ``encrypt`` (the default: every message and
  its ACK sealed with AES-GCM in the same commit) and ``keep`` (stored as received). Each
  setting runs in its own process on the same database, the settings taking turns
  (``--rounds``); ``cpu ms/msg`` is the engine process's own CPU time per message, which a
  busy shared machine disturbs far less than the rates.

The engine runs in a subprocess so the load generator does not share its interpreter; on
this 2-core machine the engine, PostgreSQL and the client still share the cores, so the
figures are lower bounds of what a dedicated host would do.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from _support import create_database, figures, free_port

ROOT = Path(__file__).resolve().parents[1]
RULES = """
version: 1
facilities: [{code: BENCH, tier: 1, assigning_authority: BENCHMRN}]
routes:
  - {match: {message_type: ADT, trigger: [A01, A04, A08]}, action: upsert_patient}
  - {match: {message_type: "*"}, action: reject, reason: ADT only}
"""
TEMPLATE = (
    "MSH|^~\\&|EPIC|BENCH|PORTALBRIDGE|PORTAL|20260101120000||ADT^A08^ADT_A01|{cid}|P|2.5.1\r"
    "EVN|A08|20260101120000|||JSMITH^Smith^John\r"
    "PID|1||{mrn}^^^BENCHMRN^MR~999-{n:06d}^^^SSA^SS||EVERYMAN^ADAM^ALBERT^JR^DR^^L~EVERYMAN^ADAM^^^^^D|"
    "JONES^MARY|19610615|M||2106-3^White^HL70005|2222 HOME STREET^APT 4B^GREENSBORO^NC^27401-1020^USA^H~"
    "PO BOX 1234^^GREENSBORO^NC^27402^USA^M||^PRN^PH^^1^555^5551234~^PRN^CP^^1^555^5559876~"
    "^NET^Internet^adam.everyman{n}@example.org|^WPN^PH^^1^555^5554321^88|eng^English^ISO6392|M^Married|"
    "CHR^Christian|{mrn}-ACC|999{n:06d}|||N^Not Hispanic^HL70189||N|1|||||N\r"
    "PD1|||GOOD HEALTH CLINIC^^1234|1234567^FAMILY^FRANK^^^DR\r"
    "NK1|1|EVERYMAN^EVE^E|SPO^Spouse^HL70063|2222 HOME STREET^^GREENSBORO^NC^27401^USA|"
    "^PRN^PH^^1^555^5551234\r"
    "PV1|1|O|CLINIC^^^BENCH||||1234567^FAMILY^FRANK^^^DR|||MED||||1|||1234567^FAMILY^FRANK^^^DR|OP|"
    "{mrn}-V1|||||||||||||||||||||||||20260101120000\r"
    "AL1|1|DA|PENICILLIN^Penicillin^RXNORM|SV|HIVES\r"
    "DG1|1||J45.909^Asthma, unspecified^I10|||F\r"
)


def messages(count: int, run: str) -> list[bytes]:
    return [b"\x0b" + TEMPLATE.format(cid=f"{run}-{n}", mrn=f"{run}{n}", n=n).encode() + b"\x1c\r"
            for n in range(count)]


# -- the client --------------------------------------------------------------------------------


async def _connection(port: int, frames: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for payload in frames:
        started = time.perf_counter()
        writer.write(payload)
        ack = await reader.readuntil(b"\x1c\r")
        latencies.append(time.perf_counter() - started)
        if b"MSA|AA|" not in ack:
            raise RuntimeError(f"unexpected acknowledgement: {ack[:300]!r}")
    writer.close()
    await writer.wait_closed()


async def _drive(port: int, frames: list[bytes], connections: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [frames[i::connections] for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, share, latencies) for share in shares))
    return time.perf_counter() - started, latencies


def drive(port: int, frames: list[bytes], connections: int) -> tuple[float, float, float]:
    elapsed, latencies = asyncio.run(_drive(port, frames, connections))
    return figures(len(frames), elapsed, latencies)


# -- references --------------------------------------------------------------------------------


def echo_server() -> tuple[int, Callable[[], None]]:
    """An MLLP server that acknowledges every frame at once, with no work in between."""
    ack = b"\x0bMSH|^~\\&|PB|PB|EPIC|BENCH|20260101||ACK^A08^ACK|1|P|2.5.1\rMSA|AA|x\r\x1c\r"
    ready, holder = threading.Event(), {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\x1c\r")
                writer.write(ack)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def run() -> None:
        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            holder["port"], holder["loop"], holder["stop"] = (
                server.sockets[0].getsockname()[1], asyncio.get_running_loop(), asyncio.Event())
            ready.set()
            await holder["stop"].wait()
            server.close()
        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait()
    return holder["port"], lambda: holder["loop"].call_soon_threadsafe(holder["stop"].set)


def raw_commits(url: str, count: int, connections: int) -> tuple[float, float, float]:
    """One INSERT + COMMIT per message, ``connections`` threads, no engine at all."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id text PRIMARY KEY, body text)")
    latencies: list[float] = []
    body = TEMPLATE.format(cid="x", mrn="x", n=0)

    def worker(share: range) -> None:
        with psycopg.connect(url) as conn:
            for n in share:
                started = time.perf_counter()
                conn.execute("INSERT INTO bench_raw VALUES (%s, %s)", (f"{uuid.uuid4()}-{n}", body))
                conn.commit()
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(range(i, count, connections),))
               for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return figures(count, elapsed, latencies)


# -- the engine --------------------------------------------------------------------------------




class Engine:
    """``portalbridge listen`` in a subprocess on a throwaway PostgreSQL database."""

    def __init__(self, url: str, folder: Path, profile: Path | None, journal: str = "encrypt") -> None:
        rules = folder / f"routing-{journal}.yaml"
        setting = "{enabled: false}" if journal == "off" else f"{{payloads: {journal}}}"
        rules.write_text(RULES + f"journal: {setting}\n")
        self.port = free_port()
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": url, "PORTALBRIDGE_CONFIG": str(rules),
               "PORTALBRIDGE_MLLP_PORT": str(self.port), "PORTALBRIDGE_LOG_LEVEL": "WARNING",
               "PORTALBRIDGE_SECRET_KEY": key}
        script = str(Path(sys.executable).with_name("portalbridge"))
        subprocess.run([script, "db", "upgrade"], env=env, check=True, capture_output=True)
        self.process = subprocess.Popen([script, "listen"], env=env)
        self.profiler: subprocess.Popen[bytes] | None = None
        if profile is not None:  # attached, so that a SIGINT makes it write the file
            self.profiler = subprocess.Popen(["py-spy", "record", "-o", str(profile), "-f",
                                              "speedscope", "--threads", "--pid",
                                              str(self.process.pid)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("portalbridge listen did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the engine process so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(60)
        self.process.terminate()
        self.process.wait(30)


Row = tuple[str, int, tuple[float, float, float], float | None]


def run_engine(url: str, folder: Path, args: argparse.Namespace, journal: str,
               connections: int) -> tuple[tuple[float, float, float], float]:
    """One run: a fresh engine process with this journal setting, warmed up, then measured;
    its figures and the engine's CPU time per message (ms, user + system)."""
    engine = Engine(url, folder, args.profile, journal)
    try:
        run = uuid.uuid4().hex[:6]  # fresh control ids and MRNs: every message is applied
        drive(engine.port, messages(200, f"w{run}"), 4)  # connections, caches
        frames = messages(args.messages, f"r{run}")
        cpu = engine.cpu_seconds()
        measured = drive(engine.port, frames, connections)
        return measured, (engine.cpu_seconds() - cpu) * 1000 / len(frames)
    finally:
        engine.stop()


def engine_rows(url: str, folder: Path, args: argparse.Namespace, journals: list[str],
                connections: int) -> list[Row]:
    """One row per journal setting: the median of ``--rounds`` runs (by rate, and the median
    CPU per message), the settings taking turns in alternating order so that a drifting
    machine favours none of them."""
    runs: dict[str, list[tuple[tuple[float, float, float], float]]] = {j: [] for j in journals}
    for number in range(args.rounds):
        for journal in journals if number % 2 == 0 else reversed(journals):
            runs[journal].append(run_engine(url, folder, args, journal, connections))
    rows: list[Row] = []
    for journal, found in runs.items():
        middle = len(found) // 2
        rows.append((f"portalbridge listen, journal {journal}", connections,
                     sorted(f for f, _cpu in found)[middle], sorted(c for _f, c in found)[middle]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4000, help="messages per row (default 4000)")
    parser.add_argument("--connections", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--profile", type=Path, help="record the engine with py-spy into this file")
    parser.add_argument("--journal", default="off,encrypt",
                        help="message-journal settings to run the engine with: off, encrypt, keep "
                             "(comma-separated; default off,encrypt)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each journal setting, in alternating order; each row is "
                             "then the median run (default 1)")
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]
    journals = args.journal.split(",")
    url, drop = create_database("pb_bench")
    rows: list[Row] = []
    try:
        port, stop_echo = echo_server()
        for connections in counts:
            frames = messages(args.messages, "e")
            rows.append(("mllp echo (no work)", connections, drive(port, frames, connections), None))
        stop_echo()
        for connections in counts:
            rows.append(("pg commit/msg (raw psycopg)", connections,
                         raw_commits(url, args.messages, connections), None))
        with tempfile.TemporaryDirectory() as folder:
            for connections in counts:
                rows += engine_rows(url, Path(folder), args, journals, connections)
    finally:
        drop()
    print(f"\n{args.messages} ADT^A08 messages of {len(messages(1, 'x')[0])} bytes per row, "
          f"PostgreSQL, {os.cpu_count()} cores; engine rows: median of {args.rounds} run(s)\n")
    print(f"{'path':<38} {'conns':>5} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/msg':>11}")
    for name, connections, (rate, p50, p99), cpu in rows:
        shown = f"{cpu:>11.3f}" if cpu is not None else f"{'':>11}"
        print(f"{name:<38} {connections:>5} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f} {shown}")


if __name__ == "__main__":
    main()
