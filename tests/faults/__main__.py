"""``python -m tests.faults [--long] [--cycles N] [--no-restarts]``: run the fault harness and
print its table; exit 1 when any violation was found."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from tests.faults.harness import CYCLE_SECONDS, Plan, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--long", action="store_true",
                        help="a soak: 5 fault cycles (about 4 minutes) instead of 1")
    parser.add_argument("--cycles", type=int, help=f"fault cycles of {CYCLE_SECONDS:.0f} s each")
    parser.add_argument("--no-restarts", action="store_true",
                        help="leave PostgreSQL and RabbitMQ running (other work shares them)")
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--logs", type=Path, help="keep the engine processes' logs here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    plan = Plan(cycles=args.cycles or (5 if args.long else 1), restarts=not args.no_restarts,
                patients=args.patients)
    folder = args.logs or Path(tempfile.mkdtemp(prefix="pb-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    books = run(plan, folder)
    print(books.table())
    print(f"\nprocess logs: {folder}")
    return 1 if books.violations else 0


if __name__ == "__main__":
    sys.exit(main())
