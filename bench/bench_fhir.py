"""FHIR Patient creates end to end on PostgreSQL, beside fhir.resources parsing alone.

Run:  .venv/bin/python bench/bench_fhir.py [--requests 3000] [--clients 1,16] [--profile FILE]

Prints one table. Every request is ``POST /fhir/Patient`` with a bearer token and the HL7
"example" Patient (Peter James Chalmers, 3.5 KB with its narrative), each with its own MRN;
every answer must be ``201 Created``, sent only after the record's transaction committed.
Rows:

- ``fhir.resources parse only``: ``Patient.model_validate_json`` on the same bodies, in
  this process, one core, measured before and after the rest: the reference rate is their
  mean (goal: the API reaches 60% of it with 16 clients).
- ``inbound.fhir read+check+translate``: what portalbridge does with a body before the
  database (JSON with duplicate-key check, fhir.resources, our checks, the command).
- ``http 201 echo``: the same client against uvicorn answering 201 at once: the ceiling of
  client, HTTP server and loopback on this machine.
- ``portalbridge api``: the engine in its own process (``portalbridge api``, group commit),
  with the mean number of requests per commit from its /metrics; then two such processes on
  the same database, the clients spread over both (scale-out).

The client is a small keep-alive HTTP/1.1 client on asyncio (one task per client, each
sending its next request after the previous answer): httpx would spend more CPU per request
than the server's parse, and client, server and PostgreSQL share this machine's cores.
A throwaway PostgreSQL database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

from _support import create_database, figures, free_port

ROOT = Path(__file__).resolve().parents[1]
#: Every process on one database shares one secret key (the engine refuses to start without).
SECRET_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
EXAMPLE = ROOT / "tests/samples/corpus/fhir/fhirpath-js/r4-patient-example.json"
TOKEN = "bench-token-0123456789"
RULES = f"""
version: 1
facilities: [{{code: BENCH, name: Bench Hospital, tier: 1, assigning_authority: BENCHMRN}}]
routes:
  - {{match: {{message_type: ADT}}, action: upsert_patient}}
authorities: [{{code: BENCHMRN, aliases: ["urn:oid:1.2.36.146.595.217.0.1"]}}]
fhir:
  clients: [{{name: bench, facility: BENCH, token_sha256: "{sha256(TOKEN.encode()).hexdigest()}"}}]
"""


def bodies(count: int, run: str) -> list[bytes]:
    template = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    result = []
    for n in range(count):
        template["identifier"][0]["value"] = f"{run}-{n}"
        result.append(json.dumps(template).encode())
    return result


def request(body: bytes, port: int) -> bytes:
    head = (f"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/fhir+json\r\nAccept: application/fhir+json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


# -- the client --------------------------------------------------------------------------------


async def _client(port: int, requests: list[bytes], latencies: list[float]) -> None:
    """One keep-alive connection sending its requests one after the other."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for payload in requests:
        started = time.perf_counter()
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        answer = await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if status != b"201":
            raise RuntimeError(f"expected 201, got {status!r}: {answer[:300]!r}")
    writer.close()
    await writer.wait_closed()


async def _drive(ports: list[int], payloads: list[bytes], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [(ports[i % len(ports)], payloads[i::clients]) for i in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, [request(b, port) for b in share], latencies)
                           for port, share in shares))
    return time.perf_counter() - started, latencies


def drive(port: int | list[int], payloads: list[bytes], clients: int) -> tuple[float, float, float]:
    """Send ``payloads`` over ``clients`` connections (spread over the servers' ports)."""
    ports = port if isinstance(port, list) else [port]
    elapsed, latencies = asyncio.run(_drive(ports, payloads, clients))
    return figures(len(payloads), elapsed, latencies)


# -- in-process references ---------------------------------------------------------------------


def parse_only(payloads: list[bytes]) -> tuple[float, float, float]:
    from fhir.resources.R4B.patient import Patient

    return _timed(payloads, Patient.model_validate_json)


def read_check_translate(payloads: list[bytes]) -> tuple[float, float, float]:
    from engine.rules import parse_rules
    from inbound.fhir import WriteRequest, patient_command, read_json, validate_patient

    rules = parse_rules(RULES)
    client = rules.fhir.clients[0]

    def work(body: bytes) -> object:
        data = read_json(body, "Patient")
        validate_patient(data, "R4")
        return patient_command(data, WriteRequest(rules=rules, client=client, control_id="x",
                                                  interaction="create"))

    return _timed(payloads, work)


def _timed(payloads: list[bytes], work: Callable[[bytes], object]) -> tuple[float, float, float]:
    for body in payloads[:50]:
        work(body)
    times = []
    started = time.perf_counter()
    for body in payloads:
        begin = time.perf_counter()
        work(body)
        times.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    return figures(len(payloads), elapsed, times)


# -- servers -----------------------------------------------------------------------------------




ECHO_APP = """
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/fhir+json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})

uvicorn.run(app, host="127.0.0.1", port=%d, log_level="warning", access_log=False)
"""


class Server:
    """A subprocess serving HTTP on a free port until stopped."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{command[0]} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def echo_server() -> Server:
    port = free_port()
    return Server([sys.executable, "-c", ECHO_APP % port], dict(os.environ), port)


def engine_server(url: str, folder: Path, profile: Path | None) -> Server:
    rules = folder / "routing.yaml"
    rules.write_text(RULES)
    port = free_port()
    env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": url, "PORTALBRIDGE_CONFIG": str(rules),
           "PORTALBRIDGE_HTTP_PORT": str(port), "PORTALBRIDGE_LOG_LEVEL": "WARNING",
           "PORTALBRIDGE_SECRET_KEY": SECRET_KEY}
    script = str(Path(sys.executable).with_name("portalbridge"))
    subprocess.run([script, "db", "upgrade"], env=env, check=True, capture_output=True)  # idempotent
    command = [script, "api"]
    if profile is not None:
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "-o", str(profile),
                   "-f", "raw", "--idle", "--threads", "--", *command]
    return Server(command, env, port)




# -- the run -----------------------------------------------------------------------------------


Row = tuple[str, str, tuple[float, float, float]]


def run(requests: int, counts: list[int], profile: Path | None) -> list[Row]:
    rows: list[Row] = [("fhir.resources parse only", "before", parse_only(bodies(requests, "p"))),
                       ("inbound.fhir read+check+translate", "-",
                        read_check_translate(bodies(requests, "t")))]
    echo = echo_server()
    try:
        for clients in counts:
            rows.append(("http 201 echo (no work)", str(clients),
                         drive(echo.port, bodies(requests, "e"), clients)))
    finally:
        echo.stop()
    url, drop = create_database("pb_bench_fhir")
    try:
        with tempfile.TemporaryDirectory() as folder:
            engine = engine_server(url, Path(folder), profile)
            try:
                drive(engine.port, bodies(300, "warm"), 4)
                for clients in counts:
                    before = commit_counts(engine.port)
                    result = drive(engine.port, bodies(requests, f"r{clients}"), clients)
                    commits = commit_counts(engine.port)[0] - before[0]
                    rows.append((f"portalbridge api ({requests / max(commits, 1):.1f}/commit)",
                                 str(clients), result))
                # Processes are stateless (DESIGN 5): a second one has its own interpreter lock.
                second = engine_server(url, Path(folder), None)
                try:
                    drive(second.port, bodies(100, "warm2"), 2)
                    rows.append(("portalbridge api, 2 processes", str(max(counts)),
                                 drive([engine.port, second.port], bodies(requests, "two"), max(counts))))
                finally:
                    second.stop()
            finally:
                engine.stop()
    finally:
        drop()
    # Neighbours on a shared machine come and go: measure the reference on both sides.
    rows.append(("fhir.resources parse only", "after", parse_only(bodies(requests, "q"))))
    return rows


def commit_counts(port: int) -> tuple[int, int]:
    """(commits, messages) from the engine's /metrics."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    values = dict(line.split() for line in text.split("\r\n\r\n", 1)[1].splitlines()
                  if line and not line.startswith("#"))
    return (int(float(values["portalbridge_commits_total"])),
            int(float(values["portalbridge_messages_committed_total"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per row (default 3000)")
    parser.add_argument("--clients", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--profile", type=Path,
                        help="record the engine with py-spy (collapsed stacks, all threads) into this file")
    args = parser.parse_args()
    rows = run(args.requests, [int(c) for c in args.clients.split(",")], args.profile)
    reference = (rows[0][2][0] + rows[-1][2][0]) / 2  # the mean of before and after
    print(f"\n{args.requests} POST /fhir/Patient of {len(bodies(1, 'x')[0])} bytes per row, "
          f"PostgreSQL, {os.cpu_count()} cores\n")
    print(f"{'path':<40} {'clients':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of parse':>9}")
    for name, clients, (rate, p50, p99) in rows:
        print(f"{name:<40} {clients:>7} {rate:>8,.0f} {p50:>8.2f} {p99:>8.2f} {rate / reference:>9.0%}")
    print("\n'of parse': against the mean of the two parse-only rows (one core, this process).")


if __name__ == "__main__":
    main()
