"""``portalbridge letters --pending``: the activation letters still owed, in one PDF.

For a mail room: every pending member with a valid token whose e-mail policy required printed
activation, or whose activation-token e-mails and texts all died or bounced, and whose letter
was not printed yet for the current token. Each member printed is written to the audit log
(``letter.print`` as ``cli:<login>``, with the reason), which is also what makes the next run
leave them out. The file holds activation tokens: it is created readable by its owner only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.cli_help import STORE_SETTINGS, settings_epilog
from engine.cli_staff import cli_actor
from engine.config import Settings
from engine.errors import RejectedMessage

__all__ = ["add_letters_command"]

_KEY_SETTINGS = (*STORE_SETTINGS, "PORTALBRIDGE_SECRET_KEY", "PORTALBRIDGE_SECRET_KEY_FILE")


def add_letters_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    letters = sub.add_parser("letters", help="print activation letters into one PDF (--pending: "
                             "every letter still owed; or the members named)",
                             epilog=settings_epilog(_KEY_SETTINGS))
    letters.add_argument("members", nargs="*", metavar="MEMBER", help="a member id")
    letters.add_argument("--pending", action="store_true", help="every letter still owed: "
                         "printed activation required, or every activation e-mail/text dead")
    letters.add_argument("--output", "-o", type=Path, default=Path("activation-letters.pdf"),
                         help="the PDF to write (default ./activation-letters.pdf; replaced)")
    letters.add_argument("--reason", default="mail room run",
                         help="why (written to the audit log; default 'mail room run')")
    letters.set_defaults(run=_letters)


def _letters(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit import AuditEntry
    from engine.bootstrap import build_runtime, letter_desk
    from engine.letters import LETTER_PRINTED

    if not args.pending and not args.members:
        raise RejectedMessage("letters: name member ids, or --pending for every letter still owed")
    runtime = build_runtime(settings)
    desk = letter_desk(runtime)
    wanted = list(dict.fromkeys([*args.members, *(desk.owed() if args.pending else [])]))
    if not wanted:
        print("no activation letter is owed", file=sys.stderr)
        return 0
    printed = desk.letters(wanted)
    _write_private(args.output, printed.pdf)
    actor = cli_actor()
    for member, patient in printed.printed:
        runtime.audit.append(AuditEntry(actor=actor, action=LETTER_PRINTED, outcome="success",
                                        reason=args.reason, member_id=member, patient_id=patient,
                                        detail={"file": args.output.name[:200]}))
    for problem in printed.problems:
        print(f"not printed: {problem.reason}", file=sys.stderr)
    print(f"{len(printed.printed)} activation letter(s) written to {args.output}, one page each")
    return 1 if printed.problems else 0


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (it holds activation tokens)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        raise RejectedMessage(f"{path}: cannot write ({exc.strerror})") from None
