"""``portalbridge staff add|list|revoke`` and ``portalbridge audit``: the operators' verbs.

Each staff command is written to the audit log as ``cli:<login>``, where the login is the
name of the process's real user id (not ``$USER``, which anyone can set), whether it
succeeds or is refused. ``staff add`` prints its token once, alone on the last line of
standard output, so ``TOKEN=$(portalbridge staff add x --role administrator | tail -n1)``
works; everything else it says goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from engine.cli_help import STORE_SETTINGS, settings_epilog
from engine.config import Settings
from engine.errors import RejectedMessage
from engine.staff import Role

if TYPE_CHECKING:
    from engine.audit import AuditRecord
    from engine.bootstrap import Runtime
    from engine.staff import StaffEntry

__all__ = ["add_audit_command", "add_staff_commands", "cli_actor"]

_ROLES = ", ".join(f'"{role.value}"' for role in Role)


def add_staff_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="staff members: bearer tokens with roles")
    staff_sub = staff.add_subparsers(metavar="ACTION", required=True)
    add = staff_sub.add_parser("add", help="add a staff member and print its token once, alone "
                               "on the last line of standard output", epilog=settings_epilog(STORE_SETTINGS))
    add.add_argument("name", help="unique for good: names are never reused")
    add.add_argument("--role", action="append", required=True, metavar="ROLE",
                     help=f"any case; repeat for several: {_ROLES}")
    add.add_argument("--reason", default="", help="why (written to the audit log)")
    add.set_defaults(run=_staff_add)
    show = staff_sub.add_parser("list", help="every staff member: id, name, roles, created, revoked",
                                epilog=settings_epilog(STORE_SETTINGS))
    show.set_defaults(run=_staff_list)
    revoke = staff_sub.add_parser("revoke", help="revoke a staff member's token, at once",
                                  epilog=settings_epilog(STORE_SETTINGS))
    revoke.add_argument("who", metavar="NAME|ID")
    revoke.add_argument("--reason", required=True, help="why (written to the audit log)")
    revoke.set_defaults(run=_staff_revoke)


def add_audit_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="print the audit log, newest first, one tab-separated "
                           "line per entry: id, time, actor, action, outcome, member, patient, "
                           "reason, detail", epilog=settings_epilog(STORE_SETTINGS))
    audit.add_argument("--member", metavar="ID", help="entries about this member id")
    audit.add_argument("--actor", help="staff:NAME, cli:LOGIN, ...; a trailing * matches a prefix")
    audit.add_argument("--action", help="staff.add, mpi.read, ...; a trailing * matches a prefix")
    audit.add_argument("--since", metavar="WHEN", help="a duration back from now (30m, 1h, 7d) "
                       "or an ISO 8601 time")
    audit.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    audit.set_defaults(run=_audit)


def cli_actor() -> str:
    """``cli:<login>``: the audit log's name for whoever runs this process."""
    try:
        import pwd

        return f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    except (ImportError, KeyError):  # no passwd entry (a bare container) or not Unix
        return f"cli:uid-{os.getuid()}" if hasattr(os, "getuid") else "cli:unknown"


@contextlib.contextmanager
def _audited(runtime: Runtime, action: str, reason: str, detail: dict[str, str]) -> Iterator[None]:
    """Write the command's audit entry: success, or refused with the refusal's reason.
    ``detail`` may be filled in by the command as it goes."""
    from engine.audit import AuditEntry

    try:
        yield
    except RejectedMessage as exc:
        runtime.audit.append(AuditEntry(actor=cli_actor(), action=action, outcome="refused",
                                        reason=f"{reason} (refused: {exc.reason})".lstrip()[:2000],
                                        detail=detail))
        raise
    runtime.audit.append(AuditEntry(actor=cli_actor(), action=action, outcome="success",
                                    reason=reason, detail=detail))


def _staff_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime

    roles = frozenset(Role.parse(text) for text in args.role)  # before touching the database
    runtime = build_runtime(settings, needs_key=False)
    detail = {"name": args.name[:100], "roles": _roles(roles)}
    with _audited(runtime, "staff.add", args.reason, detail):
        principal, token = runtime.staff.add(args.name, roles)
        detail["staff_id"] = principal.id
    print(f"added staff member {principal.name} (id {principal.id}) with roles: {_roles(roles)}.\n"
          "Its bearer token is on the last line of standard output and is shown only this once.",
          file=sys.stderr)
    print(token)
    return 0


def _staff_list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime

    runtime = build_runtime(settings, needs_key=False)
    with _audited(runtime, "staff.list", "", {}):
        entries = runtime.staff.list()
    print("id\tname\troles\tcreated\trevoked")
    for entry in entries:
        print(_staff_line(entry))
    return 0


def _staff_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime

    runtime = build_runtime(settings, needs_key=False)
    detail = {"staff": args.who[:100]}
    with _audited(runtime, "staff.revoke", args.reason, detail):
        entry = runtime.staff.revoke(args.who)
        detail.update(staff_id=entry.id, name=entry.name)
    print(f"revoked {entry.name} (id {entry.id}); its token no longer works")
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit import parse_since
    from engine.bootstrap import build_runtime

    if args.limit < 1:
        raise RejectedMessage("--limit must be at least 1")
    runtime = build_runtime(settings, needs_key=False)
    try:
        since = parse_since(args.since, runtime.clock.now()) if args.since else None
    except ValueError as exc:
        raise RejectedMessage(str(exc)) from None
    for record in runtime.audit.query(member_id=args.member, actor=args.actor,
                                      action=args.action, since=since, limit=args.limit):
        print(_audit_line(record))
    return 0


def _roles(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(roles))


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _staff_line(entry: StaffEntry) -> str:
    return "\t".join((entry.id, entry.name, _roles(entry.roles), _time(entry.created_at),
                      _time(entry.revoked_at)))


def _audit_line(record: AuditRecord) -> str:
    e = record.entry
    detail = orjson.dumps(dict(e.detail), option=orjson.OPT_SORT_KEYS).decode() if e.detail else "-"
    reason = " ".join(e.reason.split()) or "-"  # one line per entry, whatever the reason held
    return "\t".join((str(record.id), _time(record.at), e.actor, e.action, e.outcome,
                      e.member_id or "-", e.patient_id or "-", reason, detail))
