"""Activation over HTTP (``POST /portal/activation``) beside the bare password-hash rate.

Both run on the same cores in the same run: the reference hashes the same number of
passwords with the configured hasher (PBKDF2-SHA256, 65,536 iterations, 64-byte salt) on a
thread pool as wide as the machine; the engine serves activations on PostgreSQL, each one a
token lookup, the password hashed on the hashing pool, and the member's change, event,
notification and audit row committed through the group committer. Goal: within 10%.

Run: ``python bench/bench_activation.py [--members N] [--clients C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import create_database, post_all  # noqa: E402
from bench.bench_enrollment import RULES, seed_patients  # noqa: E402
from engine.background import EngineThread  # noqa: E402
from engine.bootstrap import build_runtime  # noqa: E402
from engine.commands import MessageOrigin  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.member_commands import Actor, EnrollPatient, PreferenceInput  # noqa: E402
from engine.store.database import open_database  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.tables import notifications  # noqa: E402
from membership.policies import EnrollmentMode  # noqa: E402
from tests.fakes import TEST_SECRET_KEY  # noqa: E402

MEMBERSHIP = """membership:
  required_fields: []
"""


def enroll_all(thread: EngineThread, count: int) -> list[str]:
    """Enroll ``count`` seeded patients; their activation codes, read back from notifications."""
    runtime = thread.runtime
    futures = [runtime.committer.submit(EnrollPatient(
        origin=MessageOrigin(channel="bench", sender="enrollment", control_id=f"e-{n}",
                             message_type="EnrollPatient", facility=""),
        mode=EnrollmentMode.AUTOMATED, authority="GHH", value=f"B{n}", preferences=PreferenceInput(),
        passphrase_hash=None, passphrase=None, enrolling_user="BENCH", proxy_only=False,
        actor=Actor(type="interface", id="BENCH"))) for n in range(count)]
    for future in futures:
        future.result(60)
    with runtime.database.connect() as conn:
        contexts = conn.execute(select(notifications.c.context)).scalars().all()
    return [runtime.box.open(orjson.loads(c)["token"]["$sealed"]) for c in contexts]


async def activate_all(base: str, tokens: list[str], clients: int) -> float:
    """Activate every token from ``clients`` concurrent clients speaking plain HTTP/1.1
    (``post_all``)."""
    bodies = [orjson.dumps({"token": token, "username": f"member.{n}", "password": f"Harbor{n}lights"})
              for n, token in enumerate(tokens)]
    return await post_all(int(base.rsplit(":", 1)[1]), "/portal/activation", bodies, clients, expected=200)


def bare_hashing(runtime_hash: object, count: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(runtime_hash, (f"Harbor{n}lights" for n in range(count))))  # type: ignore[arg-type]
    return time.perf_counter() - started


@contextmanager
def engine_with_patients(count: int) -> Iterator[EngineThread]:
    """The API on a new PostgreSQL database with ``count`` patients (dropped afterwards)."""
    url, drop = create_database()
    config = Path(f"/tmp/bench-membership-{os.getpid()}.yaml")
    config.write_text(RULES + MEMBERSHIP, encoding="utf-8")
    try:
        database = open_database(url)
        upgrade(database)
        database.dispose()
        seed_patients(url, config, count)
        runtime = build_runtime(Settings(database_url=url, config_path=config, secret_key=TEST_SECRET_KEY,
                                         http_port=0), migrate_sqlite=False)
        with EngineThread(runtime, frozenset({"api"})) as thread:
            yield thread
        runtime.database.dispose()
    finally:
        drop()
        config.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # `portalbridge serve` runs on uvloop: so does this
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with engine_with_patients(args.members) as thread:
        runtime = thread.runtime
        tokens = enroll_all(thread, args.members)
        port = runtime.bound_ports["http"]
        reference = bare_hashing(runtime.hashers.hash, args.members)
        elapsed = asyncio.run(activate_all(f"http://127.0.0.1:{port}", tokens, args.clients))
        reference_after = bare_hashing(runtime.hashers.hash, args.members)
    bare = args.members / ((reference + reference_after) / 2)
    ours = args.members / elapsed
    print(f"\n{'measure':<52} result")
    print(f"{'bare password hashing (before / after)':<52} {args.members / reference:.1f}/s / "
          f"{args.members / reference_after:.1f}/s")
    print(f"{f'activation over HTTP, {args.members} members, {args.clients} clients':<52} {ours:.1f}/s")
    print(f"{'activation / bare hashing (mean of both)':<52} {100 * ours / bare:.0f}% (goal >= 90%)")


if __name__ == "__main__":
    main()
