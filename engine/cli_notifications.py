"""``portalbridge notifications list|replay|bounce``: what members were sent, what is stuck.

Like ``outbox list``/``outbox replay`` for status events. Lines carry ids, kind, channel,
delivery state, times and the server's (masked) reason: never the recipient's address or
number, nor any context value (tokens and passphrases are sealed in the rows anyway).
``replay`` and ``bounce`` change what a member receives, so each notification they touch is
written to the audit log as ``cli:<login>`` with the reason given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from engine.cli_help import STORE_SETTINGS, settings_epilog
from engine.cli_staff import cli_actor
from engine.config import Settings
from engine.errors import RejectedMessage

if TYPE_CHECKING:
    from engine.bootstrap import Runtime
    from engine.store.notification_rows import DeliveryRecord

__all__ = ["add_notifications_commands"]

_STATES = "queued, failed, sent, dead, bounced"


def add_notifications_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notes = sub.add_parser("notifications", help="notifications to members: delivery, replay")
    actions = notes.add_subparsers(metavar="ACTION", required=True)
    show = actions.add_parser("list", help="count notifications by delivery state; list the dead "
                              "(or --state, --member) ones, newest first, one tab-separated line "
                              "each: id, member, kind, channel, delivery, attempts, created, "
                              "next attempt or sent, reason", epilog=settings_epilog(STORE_SETTINGS))
    show.add_argument("--dead", action="store_true", help="list the dead ones (refused for good, "
                      "or failed notifications.max_attempts times)")
    show.add_argument("--state", help=f"list the ones in this delivery state: {_STATES}")
    show.add_argument("--member", metavar="ID", help="list this member's notifications")
    show.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show.set_defaults(run=_list)
    again = actions.add_parser("replay", help="make dead (or bounced) notifications pending "
                               "again; the notifier sends them with their Message-IDs unchanged",
                               epilog=settings_epilog(STORE_SETTINGS))
    again.add_argument("ids", nargs="*", metavar="ID", help="a notification id or its Message-ID")
    again.add_argument("--all-dead", action="store_true", help="every dead notification")
    again.add_argument("--reason", required=True, help="why (written to the audit log)")
    again.set_defaults(run=_replay)
    bounce = actions.add_parser("bounce", help="record that a sent notification bounced, with "
                                "the reason the bounce message gives (shown in the Workbench)",
                                epilog=settings_epilog(STORE_SETTINGS))
    bounce.add_argument("id", metavar="ID", help="the notification id or the bounced Message-ID")
    bounce.add_argument("--reason", required=True, help="what the bounce says (e.g. '550 5.1.1 "
                        "mailbox unavailable'); no addresses")
    bounce.set_defaults(run=_bounce)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime
    from engine.store.notification_rows import NotificationRows

    if args.limit < 1:
        raise RejectedMessage("--limit must be at least 1")
    rows = NotificationRows(build_runtime(settings, needs_key=False).database)
    counts = rows.counts()
    print("notifications: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    state = "dead" if args.dead else args.state
    if state or args.member:
        print("id\tmember\tkind\tchannel\tdelivery\tattempts\tcreated\tnext attempt or sent\treason")
        for record in rows.find(state=state, member_id=args.member, limit=args.limit):
            print(_line(record))
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime
    from engine.store.notification_rows import NotificationRows, notification_id

    runtime = build_runtime(settings, needs_key=False)
    replayed = NotificationRows(runtime.database).replay(args.ids, all_dead=args.all_dead)
    _audit(runtime, "notification.replay", args.reason, replayed)
    print(f"{len(replayed)} notification(s) pending again; the notifier sends them with their "
          "Message-IDs unchanged")
    left = sorted({notification_id(i) for i in args.ids} - {r.id for r in replayed})
    if left:
        print("not replayed (unknown, or not dead or bounced: `notifications list --member ID` "
              "shows their state): " + ", ".join(left), file=sys.stderr)
        return 1
    return 0


def _bounce(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit import AuditEntry
    from engine.bootstrap import build_runtime
    from engine.store.notification_rows import NotificationRows, notification_id

    runtime = build_runtime(settings, needs_key=False)
    rows = NotificationRows(runtime.database)
    try:
        record = rows.bounced(args.id, args.reason)
    except RejectedMessage as exc:
        known = rows.get(args.id)
        runtime.audit.append(AuditEntry(
            actor=cli_actor(), action="notification.bounce", outcome="refused",
            reason=f"{args.reason} (refused: {exc.reason})"[:2000],
            member_id=known.member_id if known else None,
            detail={"notification": notification_id(args.id)[:100]}))
        raise
    _audit(runtime, "notification.bounce", args.reason, [record])
    print(f"notification {record.id} ({record.kind}, {record.channel}) of member "
          f"{record.member_id} recorded as bounced")
    return 0


def _audit(runtime: Runtime, action: str, reason: str, records: Iterable[DeliveryRecord]) -> None:
    """One entry per notification, under its member, so ``audit --member`` finds it."""
    from engine.audit import AuditEntry

    actor = cli_actor()
    for record in records:
        runtime.audit.append(AuditEntry(
            actor=actor, action=action, outcome="success", reason=reason[:2000],
            member_id=record.member_id, detail={"notification": record.id, "kind": record.kind,
                                                "channel": record.channel, "was": record.state}))


def _line(record: DeliveryRecord) -> str:
    def iso(moment: datetime | None) -> str:
        return moment.isoformat(timespec="seconds") if moment is not None else "-"

    later = record.sent_at if record.state in {"sent", "bounced"} else record.next_attempt_at
    reason = " ".join((record.reason or "-").split())
    return "\t".join((record.id, record.member_id, record.kind, record.channel, record.state,
                      str(record.attempts), iso(record.created_at), iso(later), reason))
