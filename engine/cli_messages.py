"""``portalbridge messages list|show|reprocess|purge``: the message journal for operators.

``list`` prints one tab-separated line per message, newest first, and never a payload;
``show`` prints every journaled message with a control id, payload and answer included;
``reprocess`` re-runs a journaled HL7 v2 message through the normal path (``engine.reprocess``);
``purge`` runs the retention sweep now. Each is written to the audit log as
``cli:<login>`` (``messages.list``, ``messages.read``, ``messages.reprocess``,
``messages.purge``), refused or not. Payloads are printed only by ``show``, to the terminal
that asked: they hold patient data and are never logged.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import orjson

from engine.cli_help import STORE_SETTINGS, settings_epilog
from engine.cli_staff import audited, runtime_since
from engine.config import Settings
from engine.errors import RejectedMessage

if TYPE_CHECKING:
    from engine.journal import JournalRecord

__all__ = ["add_messages_commands"]

#: What the commands that open payloads read besides the store: the key that seals them.
_KEY_SETTINGS = (*STORE_SETTINGS, "PORTALBRIDGE_SECRET_KEY", "PORTALBRIDGE_SECRET_KEY_FILE")


def add_messages_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    messages = sub.add_parser("messages", help="the message journal: what each inbound message "
                              "was answered and what it changed")
    actions = messages.add_subparsers(metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="journaled messages, newest first, one "
                                 "tab-separated line each: id, received, channel, sender, control "
                                 "id, type, outcome, error code@location, effects, reprocess of",
                                 epilog=settings_epilog(STORE_SETTINGS))
    listing.add_argument("--since", metavar="WHEN", help="a duration back from now (30m, 1h, 7d) "
                         "or an ISO 8601 time")
    listing.add_argument("--outcome", help="AA, AE, AR or an HTTP status; a trailing * matches "
                         "a prefix (4*)")
    listing.add_argument("--channel", choices=("mllp", "amqp", "fhir"))
    listing.add_argument("--sender", metavar="APP^FACILITY", help="a trailing * matches a prefix")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="every journaled message with this control id "
                              "(MSH-10, or a FHIR request id), with its payload and answer",
                              epilog=settings_epilog(_KEY_SETTINGS))
    show.add_argument("control_id", metavar="CONTROL_ID")
    show.add_argument("--sender", metavar="APP^FACILITY", help="only this sender's message")
    show.set_defaults(run=_show)
    again = actions.add_parser("reprocess", help="re-run a journaled HL7 v2 message (by journal "
                               "id) with the current routing; one applied before is not applied "
                               "twice; exit 0 when it is now acknowledged AA, 1 otherwise",
                               epilog=settings_epilog(_KEY_SETTINGS))
    again.add_argument("id", type=int, metavar="ID", help="the journal id (first column of list)")
    again.add_argument("--reason", required=True, help="why (written to the audit log)")
    again.set_defaults(run=_reprocess)
    purge = actions.add_parser("purge", help="delete journaled messages older than "
                               "journal.retention now (the running processes also do it hourly)",
                               epilog=settings_epilog(STORE_SETTINGS))
    purge.set_defaults(run=_purge)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.journal import JournalQuery

    runtime, since = runtime_since(args, settings)
    query = JournalQuery(since=since, outcome=args.outcome, channel=args.channel,
                         sender=args.sender, limit=args.limit)
    detail: dict[str, str] = {}
    with audited(runtime, "messages.list", "", detail):
        records = runtime.messages.query(query)
        detail["results"] = str(len(records))
    for record in records:
        print(_line(record))
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime
    from engine.journal import JournalQuery

    runtime = build_runtime(settings)
    query = JournalQuery(control_id=args.control_id, sender=args.sender, limit=50)
    detail = {"control_id": args.control_id[:200]}
    with audited(runtime, "messages.read", "", detail):
        records = runtime.messages.query(query, payloads=True)
        detail["journal_ids"] = ",".join(str(record.id) for record in records)
    if not records:
        raise RejectedMessage(f"no journaled message with control id {args.control_id!r}"
                              + (f" from {args.sender}" if args.sender else ""))
    print("\n\n".join(_block(record) for record in reversed(records)))
    return 0


def _reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime
    from engine.reprocess import reprocess

    runtime = build_runtime(settings)
    detail = {"journal_id": str(args.id)}
    with audited(runtime, "messages.reprocess", args.reason, detail):
        result = reprocess(runtime, args.id)
        if result.record is not None:
            detail.update(new_journal_id=str(result.record.id), outcome=result.record.entry.outcome)
    for ack in result.acks:
        print(ack.decode("utf-8", errors="replace").replace("\r", "\n").rstrip())
    record = result.record
    row = f"journal row {record.id}" if record is not None else "not journaled"
    said = result.error.reason if result.error is not None else "applied"
    if record is not None and record.entry.effects.get("status") == "duplicate":
        said = "applied before, not applied again"
    print(f"reprocessed journal row {args.id} as {row}: {record.entry.outcome if record else ''} "
          f"{said}".replace("  ", " "), file=sys.stderr)
    return 0 if result.error is None else 1


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import build_runtime, journal_sweep

    runtime = build_runtime(settings, needs_key=False)
    sweep = journal_sweep(runtime)
    detail: dict[str, str] = {}
    with audited(runtime, "messages.purge", "", detail):
        removed = sweep.sweep()
        detail["removed"] = str(removed)
    print(f"{removed} journaled message(s) older than {runtime.rules.journal.retention} deleted")
    return 0


def _line(record: JournalRecord) -> str:
    e = record.entry
    error = f"{e.error_code}@{e.error_location or '-'}" if e.error_code else "-"
    effects = orjson.dumps(e.effects, option=orjson.OPT_SORT_KEYS).decode() if e.effects else "-"
    return "\t".join((str(record.id), e.received_at.isoformat(timespec="milliseconds"), e.channel,
                      e.sender or "-", e.control_id or "-", e.message_type or "-", e.outcome,
                      error, effects, str(e.reprocess_of or "-")))


def _block(record: JournalRecord) -> str:
    e = record.entry
    lines = [f"journal row {record.id}" + (f" (reprocess of {e.reprocess_of})" if e.reprocess_of else ""),
             f"received    {e.received_at.isoformat(timespec='milliseconds')} on {e.channel}",
             f"sender      {e.sender or '-'}", f"control id  {e.control_id or '-'}",
             f"type        {e.message_type or '-'}",
             f"outcome     {e.outcome}" + (f" {e.error_code} at {e.error_location or '-'}"
                                           if e.error_code else ""),
             "effects     " + (orjson.dumps(e.effects, option=orjson.OPT_SORT_KEYS).decode()
                               if e.effects else "none"),
             f"payload ({record.form}):", *_text(e.payload), "answer:", *_text(e.response)]
    return "\n".join(lines)


def _text(value: bytes | None) -> list[str]:
    if value is None:
        return ["  (not kept)"]
    text = value.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return ["  " + line for line in text.strip("\n").split("\n")]
