"""Sign-in over HTTP (``POST /portal/sessions``) beside the bare password-verification rate.

Both run on the same cores in the same run: the reference verifies the same number of
passwords against a stored hash of the configured hasher (PBKDF2-SHA256, 65,536 iterations,
64-byte salt: the default) on a thread pool as wide as the machine; the engine serves
sign-ins on PostgreSQL from C concurrent clients, each one a member read, the verification on
the hashing pool and a session inserted. Each round runs the reference, the sign-ins, the
reference again; a round's ratio is the sign-in rate over the mean of its two references (the
machine is shared: the references of one run differ by up to 2x, so rounds are reported one
by one and their median is the figure). Goal: sign-ins within 10% of the bare rate.

Run: ``python bench/bench_signin.py [--members N] [--sign-ins S] [--clients C] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import post_all  # noqa: E402
from bench.bench_activation import activate_all, engine_with_patients, enroll_all  # noqa: E402
from membership.passwords import Hashers  # noqa: E402


async def sign_in_all(port: int, members: int, sign_ins: int, clients: int) -> float:
    """``sign_ins`` sign-ins spread over the members by ``clients`` concurrent clients
    speaking plain HTTP/1.1 (``post_all``)."""
    bodies = [orjson.dumps({"username": f"member.{n % members}", "password": f"Harbor{n % members}lights"})
              for n in range(sign_ins)]
    return await post_all(port, "/portal/sessions", bodies, clients, expected=201)


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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # `portalbridge serve` runs on uvloop: so does this
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    rounds: list[tuple[float, float, float]] = []  # bare before, sign-ins, bare after (per s)
    with engine_with_patients(args.members) as thread:
        runtime = thread.runtime
        port = runtime.bound_ports["http"]
        asyncio.run(activate_all(f"http://127.0.0.1:{port}", enroll_all(thread, args.members),
                                 args.clients))
        for _ in range(args.rounds):
            before = args.sign_ins / bare_verification(runtime.hashers, args.sign_ins)
            ours = args.sign_ins / asyncio.run(sign_in_all(port, args.members, args.sign_ins,
                                                           args.clients))
            after = args.sign_ins / bare_verification(runtime.hashers, args.sign_ins)
            rounds.append((before, ours, after))
    policy = runtime.rules.membership.policies().password
    print(f"\nbare verification: {policy.hasher.value}, {policy.iterations} iterations, "
          f"{os.cpu_count()} threads; sign-ins: {args.sign_ins} per round, {args.clients} clients")
    print(f"{'round':<7}{'bare before':>13}{'sign-ins':>11}{'bare after':>12}{'ratio':>8}")
    ratios = []
    for n, (before, ours, after) in enumerate(rounds, 1):
        ratios.append(ours / ((before + after) / 2))
        print(f"{n:<7}{before:>11.1f}/s{ours:>9.1f}/s{after:>10.1f}/s{100 * ratios[-1]:>7.0f}%")
    print(f"median sign-in / bare verification: {100 * statistics.median(ratios):.0f}% (goal >= 90%)")


if __name__ == "__main__":
    main()
