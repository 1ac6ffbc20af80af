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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from engine.cli_help import STORE_SETTINGS, settings_epilog
from engine.cli_letters import add_letters_command
from engine.cli_messages import add_messages_commands
from engine.cli_notifications import add_notifications_commands
from engine.cli_send import add_send_command
from engine.cli_staff import add_audit_command, add_staff_commands
from engine.config import Settings, setting_names
from engine.errors import ConfigurationError, RejectedMessage, TransientFailure
from engine.logs import configure_logging
from engine.rules import load_rules, new_client_token

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
        configure_logging(settings.log_level)
        result: int = args.run(args, settings)
        return result
    except ConfigurationError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        # `config check` answers "invalid" with 1; for every other command it cannot start.
        return int(getattr(args, "invalid_exit", 2))
    except RejectedMessage as exc:  # the operator's request is refused as given
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TransientFailure as exc:  # the database or the broker cannot be reached at start
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portalbridge", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Patient-portal integration engine: HL7 v2 and FHIR in, MPI cache, status "
        "events out.", epilog=settings_epilog(setting_names()))
    parser.add_argument("--version", action="version", version=f"portalbridge {_version()}")
    sub = parser.add_subparsers(metavar="COMMAND")
    for name, components, text in (
        ("serve", "listen,api,relay,enrollment,notifier,scheduler",
         "run everything in one process (embedded defaults)"),
        ("listen", "listen", "run the MLLP listener only"),
        ("api", "api", "run the HTTP API only"),
        ("relay", "relay", "run the outbox relay only (status events to the broker)"),
        ("worker", "worker,enrollment", "run the queue consumers only (HL7 v2 over AMQP and "
         "automated-enrollment requests)"),
        ("notifier", "notifier", "run the notifier only (deliver notifications to members)"),
        ("scheduler", "scheduler", "run the membership scheduler only (deactivate expired "
         "passwords, end timed locks, delete ended sessions)"),
    ):
        cmd = sub.add_parser(name, help=text, description=text, epilog=settings_epilog(setting_names()))
        cmd.set_defaults(run=_serve, components=frozenset(components.split(",")))
    demo = sub.add_parser("demo", help="serve on a scratch database, send the bundled sample "
                          "feed over MLLP and print the resulting MPI records",
                          epilog=settings_epilog(("PORTALBRIDGE_CONFIG", "PORTALBRIDGE_LOG_LEVEL")))
    demo.add_argument("--keep", action="store_true", help="keep the scratch database folder")
    demo.set_defaults(run=_demo)
    _config_commands(sub)
    _route_commands(sub)
    _db_commands(sub)
    _outbox_commands(sub)
    add_notifications_commands(sub)
    add_letters_command(sub)
    _events_commands(sub)
    add_staff_commands(sub)
    add_audit_command(sub)
    add_messages_commands(sub)
    add_send_command(sub)
    _fhir_commands(sub)
    secrets = sub.add_parser("secrets", help="deployment secrets")
    secrets_sub = secrets.add_subparsers(metavar="ACTION", required=True)
    check = secrets_sub.add_parser(
        "check", help="exit 2 if a password in the environment is missing, an example value, a "
        "known default or short",
        description="Checks POSTGRES_PASSWORD, RABBITMQ_PASSWORD and the passwords inside the "
        "database and broker URLs (docker-compose's check-secrets service); never prints them.",
        epilog=settings_epilog(("PORTALBRIDGE_DATABASE_URL", "PORTALBRIDGE_BROKER_URL")))
    check.set_defaults(run=_secrets_check)
    return parser


def _version() -> str:
    try:
        return version("portalbridge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="work with routing.yaml")
    config_sub = config.add_subparsers(metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate a routing file (exit 0 valid, 1 not)",
                                  epilog=settings_epilog(("PORTALBRIDGE_CONFIG",)))
    check.add_argument("file", nargs="?", type=Path, help="default: $PORTALBRIDGE_CONFIG")
    check.set_defaults(run=_config_check, invalid_exit=1)


def _route_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    route = sub.add_parser("route", help="routing tools")
    route_sub = route.add_subparsers(metavar="ACTION", required=True)
    explain = route_sub.add_parser("explain", help="dry run of one message file: how it is read, "
                                   "which route takes it and what would change (nothing is kept)",
                                   epilog=settings_epilog(STORE_SETTINGS))
    explain.add_argument("file", type=Path)
    explain.set_defaults(run=_route_explain)


def _db_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="apply the Alembic migrations",
                           epilog=settings_epilog(("PORTALBRIDGE_DATABASE_URL", "PORTALBRIDGE_LOG_LEVEL")))
    up.set_defaults(run=_db_upgrade)


def _outbox_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    box = sub.add_parser("outbox", help="status events waiting to be published")
    box_sub = box.add_subparsers(metavar="ACTION", required=True)
    show = box_sub.add_parser("list", help="count the rows by status; list the dead (or --status) ones",
                              epilog=settings_epilog(STORE_SETTINGS))
    show.add_argument("--dead", action="store_true", help="list rows the broker refused too often")
    show.add_argument("--status", help="list rows in this status: pending, sent, unrouted, dead")
    show.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    show.set_defaults(run=_outbox_list)
    again = box_sub.add_parser("replay", help="publish rows again, with their event ids unchanged",
                               epilog=settings_epilog(STORE_SETTINGS))
    again.add_argument("ids", nargs="*", metavar="ID", help="an outbox row id or an event id")
    again.add_argument("--all-dead", action="store_true", help="every dead row")
    again.add_argument("--all-unrouted", action="store_true", help="every row no queue took")
    again.set_defaults(run=_outbox_replay)


def _events_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = sub.add_parser("events", help="status events")
    events_sub = events.add_subparsers(metavar="ACTION", required=True)
    tail = events_sub.add_parser("tail", help="print status events as they are published, "
                                 "one CloudEvent (JSON) a line",
                                 epilog=settings_epilog((*STORE_SETTINGS, "PORTALBRIDGE_BROKER_URL")))
    tail.add_argument("--last", type=int, default=10,
                      help="embedded broker: first print the last N published events (default 10)")
    tail.add_argument("--count", type=int, help="exit after this many events")
    tail.set_defaults(run=_events_tail)


def _fhir_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fhir = sub.add_parser("fhir", help="FHIR API clients")
    fhir_sub = fhir.add_subparsers(metavar="ACTION", required=True)
    token = fhir_sub.add_parser("token", help="make a new random bearer token for a FHIR client "
                                "and print the routing.yaml line that admits it",
                                epilog=settings_epilog(()))
    token.add_argument("name", help="the client's name (shown in logs)")
    token.add_argument("--facility", required=True,
                       help="the facility code the client writes for (routing.yaml facilities)")
    token.set_defaults(run=_fhir_token)


# -- commands -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, run_components
    from engine.shutdown import exit_after

    runtime = build_runtime(settings)
    log.info("portalbridge %s: database %s, rules %s", ",".join(sorted(args.components)),
             runtime.database.url.render_as_string(hide_password=True), settings.config_path)
    _run(run_components(runtime, args.components,
                        on_stopping=lambda: exit_after(settings.shutdown_timeout)))
    return 0


def _run(coroutine: object) -> None:
    """Run on uvloop when it is installed (it is on Linux), else on asyncio's own loop."""
    runner: Callable[..., object] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(coroutine)


def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import check_notification_templates

    path = args.file or settings.config_path
    rules = load_rules(path)
    templates, problems = check_notification_templates(rules)
    if problems:
        raise ConfigurationError(f"{path}: {len(problems)} template problem(s)", tuple(problems))
    print(f"{path}: valid ({len(rules.facilities)} facilities, {len(rules.senders)} senders, "
          f"{len(rules.routes)} routes, {templates} notification templates in "
          f"{len(rules.notifications.locales)} locales)")
    return 0


def _route_explain(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, explain_file

    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{args.file}: cannot read ({exc.strerror})") from exc
    explain_settings, note = _explain_database(settings)
    runtime = build_runtime(explain_settings, migrate_sqlite=explain_settings is not settings,
                            needs_key=False)
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
    from engine.bootstrap import upgrade_database

    print(f"database {upgrade_database(settings)} is at the latest schema revision")
    return 0


def _outbox_list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, count_by_status, list_rows

    database = build_runtime(settings, needs_key=False).database
    counts = count_by_status(database)
    line, note = _outbox_counts(counts, settings.uses_embedded_broker)
    print(line)
    if note:
        print(note, file=sys.stderr)
    status = "dead" if args.dead else args.status
    if status:
        print("id\tevent id\trouting key\tsubject\tsequence\tattempts\toccurred at\tlast error")
        for row in list_rows(database, status, args.limit):
            print(f"{row.id}\t{row.event_id}\t{row.routing_key}\t{row.subject}\t{row.sequence}\t"
                  f"{row.attempts}\t{row.occurred_at.isoformat()}\t{row.last_error or ''}")
    return 0


def _outbox_counts(counts: dict[str, int], embedded: bool) -> tuple[str, str]:
    """The counts line, and what ``unrouted`` means here (on standard error): with the
    embedded broker no queue is ever bound, so every published event is "unrouted" and that
    is normal; with RabbitMQ it means nobody subscribes to those routing keys yet."""
    unrouted = counts.get("unrouted", 0)
    label = {"unrouted": "published with no queue bound"} if embedded else {}
    line = "outbox: " + ", ".join(f"{n} {label.get(status, status)}" for status, n in counts.items())
    if not unrouted:
        return line, ""
    if embedded:
        return line, ("note: the embedded broker has no queues, so events are published with none "
                      "bound: that is normal; `portalbridge events tail` shows them, and RabbitMQ "
                      "(PORTALBRIDGE_BROKER_URL=amqp://...) delivers them to subscribers")
    return line, (f"note: {unrouted} event(s) were confirmed by the broker with no queue bound for "
                  "their routing key (nobody subscribes to them yet); bind a queue, then "
                  "`portalbridge outbox replay --all-unrouted` sends them again")


def _outbox_replay(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, replay_outbox

    database = build_runtime(settings, needs_key=False).database
    count = replay_outbox(database, args.ids, all_dead=args.all_dead,
                          all_unrouted=args.all_unrouted)
    print(f"{count} outbox row(s) pending again; the relay publishes them with their event ids")
    return 0


def _events_tail(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    from engine.bootstrap import build_runtime, tail_events

    runtime = build_runtime(settings, needs_key=False)
    print(_tail_source(runtime.database.url.render_as_string(hide_password=True),
                       settings.broker_url), file=sys.stderr, flush=True)
    try:
        tail_events(runtime.database, settings.broker_url, runtime.rules.events.source,
                    lambda line: print(line, flush=True), threading.Event(), last=args.last,
                    count=args.count)
    except TransientFailure as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 1
    return 0


def _tail_source(database: str, broker_url: str) -> str:
    """Which database and broker ``events tail`` follows (standard error: standard output is
    one CloudEvent a line)."""
    from kombu.utils.url import maybe_sanitize_url

    from engine.broker import is_amqp_url

    if is_amqp_url(broker_url):
        return (f"events tail: subscribed to the exchange portalbridge.status on "
                f"{maybe_sanitize_url(broker_url)} (a temporary queue: events published from now on)")
    return (f"events tail: following the outbox of {database} (the embedded broker lives inside "
            "the serve process; the events it published are read back from the outbox)")


def _fhir_token(args: argparse.Namespace, settings: Settings) -> int:
    token, line = new_client_token(args.name, args.facility)
    print(f"token for {args.name} (give it to the client; it is shown once and stored nowhere):")
    print(f"  {token}")
    print("add under fhir.clients in routing.yaml, then restart the API:")
    print(f"  {line}")
    return 0


def _secrets_check(args: argparse.Namespace, settings: Settings) -> int:
    from engine.secrets_check import secret_problems

    problems = secret_problems(os.environ)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("make a .env with new random secrets: python3 deploy/make_env.py > .env",
              file=sys.stderr)
        return 2
    print("secrets: none is missing, an example, a known default or short")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from engine.demo import run_demo

    if "PORTALBRIDGE_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)  # the demo's own output tells the story
    return run_demo(settings, keep=args.keep)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
