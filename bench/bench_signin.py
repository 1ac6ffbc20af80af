"""Sign-in over HTTP (``POST /portal/sessions``) beside the bare password-verification rate.

Both run on the same cores in the same run: the reference verifies the same number of
passwords against a stored hash of the configured hasher (PBKDF2-SHA256, 65,536 iterations,
64-byte salt: the default) on a thread pool as wide as the machine; the engine serves
sign-ins on PostgreSQL from C concurrent clients, each one a member read, the verification on
the hashing pool and a session inserted. The reference runs before and after the sign-ins;
their mean is the bar. Goal: sign-ins within 10% of it.

Run: ``python bench/bench_signin.py [--members N] [--sign-ins S] [--clients C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_activation import activate_all, engine_with_patients, enroll_all  # noqa: E402
from membership.passwords import Hashers  # noqa: E402


async def sign_in_all(base: str, members: int, sign_ins: int, clients: int) -> float:
    """``sign_ins`` sign-ins spread over the members by ``clients`` concurrent clients."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(sign_ins):
        queue.put_nowait(n % members)
    failures: list[str] = []

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            reply = await http.post("/portal/sessions", json={
                "username": f"member.{n}", "password": f"Harbor{n}lights"})
            if reply.status_code != 201:
                failures.append(reply.text)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} sign-ins failed, e.g. {failures[0]}")
    return elapsed


def bare_verification(hashers: Hashers, count: int) -> float:
    """``count`` verifications of a correct password on a pool as wide as the machine."""
    stored = hashers.hash("Harbor0lights")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda _n: hashers.check("Harbor0lights", stored).ok, range(count)))
    assert all(results)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--sign-ins", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with engine_with_patients(args.members) as thread:
        runtime = thread.runtime
        base = f"http://127.0.0.1:{runtime.bound_ports['http']}"
        asyncio.run(activate_all(base, enroll_all(thread, args.members), args.clients))
        reference = bare_verification(runtime.hashers, args.sign_ins)
        elapsed = asyncio.run(sign_in_all(base, args.members, args.sign_ins, args.clients))
        reference_after = bare_verification(runtime.hashers, args.sign_ins)
    bare = args.sign_ins / ((reference + reference_after) / 2)
    ours = args.sign_ins / elapsed
    policy = runtime.rules.membership.policies().password
    print(f"\n{'measure':<58} result")
    print(f"{f'bare verification, {policy.hasher.value} {policy.iterations} (before / after)':<58} "
          f"{args.sign_ins / reference:.1f}/s / {args.sign_ins / reference_after:.1f}/s")
    print(f"{f'sign-in over HTTP, {args.sign_ins} sign-ins, {args.clients} clients':<58} {ours:.1f}/s")
    print(f"{'sign-in / bare verification (mean of both)':<58} {100 * ours / bare:.0f}% (goal >= 90%)")


if __name__ == "__main__":
    main()
