"""``portalbridge``: the command line. Each subcommand is a small function over the runtime."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from engine.config import Settings
from engine.errors import ConfigurationError
from engine.rules import load_rules

__all__ = ["main"]

log = logging.getLogger("portalbridge")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_environment()
        _configure_logging(settings.log_level)
        result: int = args.run(args, settings)
        return result
    except ConfigurationError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portalbridge", description=(
        "Patient-portal integration engine: HL7 v2 and FHIR in, MPI cache, status events out."))
    sub = parser.add_subparsers(metavar="COMMAND")
    for name, components, text in (
        ("serve", "listen,api", "run everything in one process (embedded defaults)"),
        ("listen", "listen", "run the MLLP listener only"),
        ("api", "api", "run the HTTP API only"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.set_defaults(run=_serve, components=frozenset(components.split(",")))
    demo = sub.add_parser("demo", help="serve on a scratch database, send the bundled sample "
                          "feed over MLLP and print the resulting MPI records")
    demo.add_argument("--keep", action="store_true", help="keep the scratch database folder")
    demo.set_defaults(run=_demo)
    _config_commands(sub)
    _route_commands(sub)
    _db_commands(sub)
    return parser


def _config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="work with routing.yaml")
    config_sub = config.add_subparsers(metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate a routing file (exit 0 valid, 1 not)")
    check.add_argument("file", nargs="?", type=Path, help="default: $PORTALBRIDGE_CONFIG")
    check.set_defaults(run=_config_check)


def _route_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    route = sub.add_parser("route", help="routing tools")
    route_sub = route.add_subparsers(metavar="ACTION", required=True)
    explain = route_sub.add_parser("explain", help="dry run of one message file: how it is read, "
                                   "which route takes it and what would change (nothing is kept)")
    explain.add_argument("file", type=Path)
    explain.set_defaults(run=_route_explain)


def _db_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="apply the Alembic migrations")
    up.set_defaults(run=_db_upgrade)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every plugin it loads; its warnings are what an operator needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)


# -- commands -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, run_components

    runtime = build_runtime(settings)
    log.info("portalbridge %s: database %s, rules %s", ",".join(sorted(args.components)),
             runtime.database.url.render_as_string(hide_password=True), settings.config_path)
    _run(run_components(runtime, args.components))
    return 0


def _run(coroutine: object) -> None:
    """Run on uvloop when it is installed (it is on Linux), else on asyncio's own loop."""
    runner: Callable[..., object] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(coroutine)


def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.config_path
    rules = load_rules(path)
    print(f"{path}: valid ({len(rules.facilities)} facilities, {len(rules.senders)} senders, "
          f"{len(rules.routes)} routes)")
    return 0


def _route_explain(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, explain_file

    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{args.file}: cannot read ({exc.strerror})") from exc
    explain_settings, note = _explain_database(settings)
    runtime = build_runtime(explain_settings, migrate_sqlite=explain_settings is not settings)
    print(f"# {args.file} - dry run against {note}; nothing is stored")
    lines, accepted = explain_file(runtime, raw)
    print("\n".join(lines))
    return 0 if accepted else 1


def _explain_database(settings: Settings) -> tuple[Settings, str]:
    """The configured database when it exists, else an empty in-memory one (no file created)."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return replace(settings, database_url="sqlite://"), "an empty index (no database yet)"
    return settings, "the configured database"


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from engine.store.database import open_database
    from engine.store.migrate import pending_revision, upgrade

    database = open_database(settings.database_url)
    upgrade(database)
    print(f"database {database.url.render_as_string(hide_password=True)} is at the latest "
          f"schema revision" if pending_revision(database) is None else "upgrade incomplete")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from engine.demo import run_demo

    if "PORTALBRIDGE_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)  # the demo's own output tells the story
    return run_demo(settings, keep=args.keep)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
