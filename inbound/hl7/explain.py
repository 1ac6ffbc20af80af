"""``portalbridge route explain`` for HL7 v2: how a message is read, routed and what it would do.

Everything is done as for a real message except the commit: the dry run applies the command
in a transaction that is rolled back, so the report shows real changes and leaves none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.commands import (
    ChangePatientIdentifier,
    Command,
    MergePatientRecords,
    Outcome,
    UpsertPatientRecord,
)
from engine.errors import EngineError, RejectedMessage
from engine.routing import Router
from engine.rules import Hl7Rules
from inbound.hl7.ack import ack_codes
from inbound.hl7.batch import split_stream
from inbound.hl7.charset import decode_message
from inbound.hl7.reader import Er7Error
from inbound.hl7.receiver import Prepared, prepare
from inbound.mllp import MllpDecoder
from mpi.index import PatientChange

__all__ = ["explain_hl7"]

DryRun = Callable[[Command], Outcome]


def explain_hl7(raw: bytes, router: Router, rules: Hl7Rules, dry_run: DryRun,
                validate: Callable[[str], None] | None = None) -> tuple[list[str], bool]:
    """Report lines, and whether every message would be accepted."""
    raw = _unframe(raw)
    try:
        text, encoding = decode_message(raw, rules.fallback_encoding)
        batch = split_stream(text)
    except Er7Error as exc:
        return [f"cannot read the file: {exc}", "acknowledgement: AR"], False
    lines: list[str] = [f"read as {encoding}; {len(batch.messages)} message(s)"
                        + (" in a batch" if batch.is_batch else "")]
    accepted = True
    for number, message_text in enumerate(batch.messages, start=1):
        report, ok = _explain_one(prepare(message_text, encoding, router, validate), dry_run)
        lines += [f"message {number}:", *(f"  {line}" for line in report)]
        accepted &= ok
    return lines, accepted


def _unframe(raw: bytes) -> bytes:
    """A file holding MLLP frames is explained by its payload."""
    if not raw.lstrip().startswith(b"\x0b"):
        return raw
    frames = [f for f in MllpDecoder(len(raw) + 1).feed(raw.lstrip()) if isinstance(f, bytes)]
    return b"\r".join(frames) if frames else raw


def _explain_one(prepared: Prepared, dry_run: DryRun) -> tuple[list[str], bool]:
    lines = _reading(prepared)
    error: EngineError | None = prepared.error
    if prepared.decision is not None:
        lines += [f"routing: {why}" for why in prepared.decision.explanation]
    lines += [f"warning at {w.location}: {w.reason}" for w in prepared.warnings]
    if error is None and prepared.command is not None:
        lines += _intent(prepared.command)
        if prepared.note:
            lines.append(f"note: {prepared.note}")
        try:
            outcome = dry_run(prepared.command)
            lines += _effects(outcome)
        except EngineError as exc:
            error = exc
    elif error is None:
        lines.append(prepared.note or "nothing would be applied")
    if error is not None:
        where = f" at {error.location}" if isinstance(error, RejectedMessage) and error.location else ""
        lines.append(f"refused{where}: {error.reason}")
    codes = ack_codes(prepared.header, error)
    lines.append(f"acknowledgement: {', '.join(codes) or 'none requested'}")
    return lines, error is None


def _reading(prepared: Prepared) -> list[str]:
    header = prepared.header
    if header is None:
        return [f"control id (MSH-10): {prepared.control_id or '(none)'}"]
    lines = [
        f"type: {header.message_type}^{header.trigger}"
        + (f" (structure {header.structure})" if header.structure else "")
        + f", version {header.version or '(none)'}",
        f"control id (MSH-10): {header.control_id}",
        f"sender: application '{header.sending_application}', facility "
        f"{' / '.join(header.sending_facility) or '(none)'}",
        "acknowledgement mode: " + (f"enhanced (MSH-15 {header.accept_ack or '-'}, "
                                    f"MSH-16 {header.application_ack or '-'})"
                                    if header.enhanced_mode else "original"),
    ]
    pid = prepared.message.segment("PID") if prepared.message else None
    if pid is not None:
        ids = [", ".join(filter(None, [r.component(1), r.component(4), r.component(5)]))
               for r in pid.repetitions(3) if not r.is_null]
        lines.append("patient identifiers (PID-3): " + ("; ".join(ids) or "(none)"))
    return lines


def _intent(command: Command) -> list[str]:
    if isinstance(command, UpsertPatientRecord):
        fields = ", ".join(sorted(command.update.present)) or "(none)"
        return [f"would upsert record {command.key}", f"fields stated: {fields}"]
    if isinstance(command, MergePatientRecords):
        return [f"would merge record {m.prior} into {m.survivor}" for m in command.merges]
    assert isinstance(command, ChangePatientIdentifier)
    return [f"would change identifier {c.old} to {c.new}" for c in command.changes]


def _effects(outcome: Outcome) -> list[str]:
    if outcome.status == "duplicate":
        return ["already committed before (same sender and MSH-10): would not apply again"]
    if not outcome.changes:
        return ["no patient's best demographics would change"]
    lines = []
    for change in outcome.changes:
        lines += _change_lines(change)
    lines.append(f"events written to the outbox: {outcome.events}")
    return lines


def _change_lines(change: PatientChange) -> list[str]:
    state = "new patient" if change.created else "patient"
    lines = [f"{state} {change.patient_id}: best demographics from {change.winner_facility or '-'}"
             f" (tier {change.winner_tier})"]
    if change.merged_into:
        lines.append(f"  merged into patient {change.merged_into}")
    lines += [f"  {name}: {_short(old)} -> {_short(new)}" for name, (old, new) in change.changed.items()]
    return lines


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
