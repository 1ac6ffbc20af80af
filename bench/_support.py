"""What the end-to-end benchmarks share: a throwaway database, free ports, the summary."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg

ADMIN_URL = os.environ.get("PORTALBRIDGE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

#: (operations per second, p50 ms, p99 ms)
Figures = tuple[float, float, float]


def create_database(prefix: str = "pb_bench") -> tuple[str, Callable[[], None]]:
    """A new empty PostgreSQL database and the function that drops it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return url, drop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def figures(count: int, elapsed: float, latencies: list[float]) -> Figures:
    """Rate, median and 99th percentile latency (ms) of ``count`` operations."""
    cuts = statistics.quantiles(latencies, n=100)
    return count / elapsed, cuts[49] * 1000, cuts[98] * 1000


async def post_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                    body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on a kept-alive connection: the status and the body. The benchmarks'
    clients share the cores with the engine, and a full HTTP client library would spend more of
    them than the server's own work (httpx: about 1.5 ms of CPU a request here, a third of it
    in failed imports of optional async libraries on every request)."""
    writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    return status, await reader.readexactly(length)


async def post_all(port: int, path: str, bodies: list[bytes], clients: int, expected: int) -> float:
    """POST every body to ``path`` from ``clients`` concurrent clients, each on its own
    kept-alive connection; the seconds it took. Any answer but ``expected`` ends the run."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failures: list[bytes] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not queue.empty():
            status, answer = await post_json(reader, writer, path, queue.get_nowait())
            if status != expected:
                failures.append(answer)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} of {len(bodies)} POST {path} failed, e.g. {failures[0]!r}")
    return elapsed
