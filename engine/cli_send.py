"""``portalbridge send FILE|DIR...``: HL7 v2 files to an MLLP receiver, exactly as stored.

No byte is rewritten (byte-order marks, LF or CRLF, batch envelopes, frames already in the
file all go as they are); see ``inbound.hl7.files``. The summary (stdout) counts the
acknowledgement codes and lists every refusal with the receiver's reason; a progress bar
(tqdm, on stderr) shows on long runs when stderr is a terminal, or always with --progress.
Exit code: 0 when every message was accepted, 1 when one was refused or lost, 2 when the
receiver cannot be reached or a file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.cli_help import settings_epilog
from engine.config import Settings
from engine.errors import RejectedMessage

if TYPE_CHECKING:
    from tqdm import tqdm


class Answer(Protocol):
    """What ``send_hl7_files`` says about one message (``inbound.mllp_sender.Answer``)."""

    @property
    def path(self) -> Path: ...
    @property
    def control_id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def reason(self) -> str: ...

__all__ = ["add_send_command"]

_ACCEPTED = frozenset({"AA", "CA", "-"})
_MESSAGE_STARTS = (b"MSH", b"FHS", b"BHS", b"\x0b")


def add_send_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = ("send HL7 v2 files over MLLP exactly as stored (one or many messages a file, "
            "FHS/BHS batches, already-framed files); resend what is not acknowledged; print "
            "a summary of the acknowledgement codes")
    send = sub.add_parser("send", help=text, description=text,
                          epilog=settings_epilog(("PORTALBRIDGE_MLLP_PORT",)))
    send.add_argument("paths", nargs="+", metavar="FILE|DIR",
                      help="files, or folders whose HL7 files are sent in name order")
    send.add_argument("--host", default="127.0.0.1", help="receiver host (default 127.0.0.1)")
    send.add_argument("--port", type=int, help="receiver port (default: $PORTALBRIDGE_MLLP_PORT, 2575)")
    send.add_argument("--connections", type=int, default=1, metavar="N",
                      help="files sent side by side on N connections; a file's messages stay in "
                      "order on one (default 1)")
    send.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                      help="wait this long for an acknowledgement before reconnecting (default 30)")
    send.add_argument("--attempts", type=int, default=5,
                      help="sends of one frame before it is given up as lost (default 5)")
    send.add_argument("--progress", action="store_true",
                      help="show the progress bar even when standard error is not a terminal")
    send.set_defaults(run=_send)


def _send(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bootstrap import send_hl7_files

    if args.connections < 1 or args.attempts < 1 or args.timeout <= 0:
        raise RejectedMessage("--connections and --attempts must be at least 1, --timeout above 0")
    files = _files(args.paths)
    port = args.port if args.port is not None else settings.mllp_port
    with _progress(len(files), args.progress) as bar:
        answers, messages = send_hl7_files(files, args.host, port, connections=args.connections,
                                           timeout=args.timeout, attempts=args.attempts,
                                           on_message=lambda _answer: _advance(bar),
                                           on_total=lambda total: _set_total(bar, total))
    print(_summary(answers, len(files), f"{args.host}:{port}"))
    return 0 if all(a.code in _ACCEPTED for a in answers) and messages else 1


def _files(paths: list[str]) -> list[Path]:
    """The files named, and the HL7 files of the folders named (by name, not recursing)."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += [p for p in sorted(path.iterdir()) if p.is_file() and _looks_like_hl7(p)]
        elif path.is_file():
            found.append(path)
        else:
            raise RejectedMessage(f"{name}: no such file or folder")
    if not found:
        raise RejectedMessage("no HL7 files to send in " + ", ".join(paths))
    return found


def _looks_like_hl7(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n\t ")
    except OSError:
        return False
    return head.startswith(_MESSAGE_STARTS)


def _progress(files: int, forced: bool) -> tqdm[Any]:
    from tqdm import tqdm

    # Only on long runs (tqdm draws nothing before a second has passed), unless asked for.
    return tqdm(total=None, unit="msg", file=sys.stderr, delay=0 if forced else 1.0, dynamic_ncols=True,
                disable=not (forced or sys.stderr.isatty()), desc=f"{files} file(s)")


def _advance(bar: tqdm[Any]) -> None:
    bar.update(1)


def _set_total(bar: tqdm[Any], total: int) -> None:
    bar.total = total


def _summary(answers: Sequence[Answer], files: int, receiver: str) -> str:
    counts = Counter(a.code for a in answers)
    codes = ", ".join(f"{code} {count}" for code, count in sorted(counts.items())) or "none"
    lines = [f"sent {len(answers)} message(s) from {files} file(s) to {receiver}: {codes}"]
    refused = [a for a in answers if a.code not in _ACCEPTED]
    if refused:
        lines.append("not accepted:")
        lines += [f"  {a.path}\t{a.control_id or '(no MSH-10)'}\t{a.code}\t{a.reason or '-'}"
                  for a in refused]
    return "\n".join(lines)
