"""``portalbridge messages reprocess``: a journaled HL7 v2 message through the normal path again.

The message's bytes go to a receiver like the listener's (same router, same group committer,
same journal), so the current ``routing.yaml`` decides, and idempotency holds: a message
that was applied before is acknowledged "already committed" and not applied twice. The
re-run is journaled as a new row pointing at the one it re-ran (``reprocess_of``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from engine.bootstrap import Runtime, hl7_receiver
from engine.errors import EngineError, InvalidMessage, NotFound
from engine.journal import JournalQuery, JournalRecord

__all__ = ["HL7_CHANNELS", "Reprocessed", "reprocess"]

#: Journal channels whose messages can be re-run (FHIR clients resend their own requests).
HL7_CHANNELS = frozenset({"mllp", "amqp"})


@dataclass(frozen=True, slots=True)
class Reprocessed:
    """What the re-run answered, and its journal row (None when the journal is disabled)."""

    acks: list[bytes]
    error: EngineError | None
    record: JournalRecord | None


def reprocess(runtime: Runtime, row_id: int) -> Reprocessed:
    """Re-run journal row ``row_id``; raises ``NotFound`` or ``InvalidMessage`` when it cannot."""
    original = runtime.messages.get(row_id)
    if original is None:
        raise NotFound(f"no journaled message {row_id}")
    entry = original.entry
    if entry.channel not in HL7_CHANNELS:
        raise InvalidMessage(f"journal row {row_id} is a {entry.channel} request: FHIR is "
                             "answered at once and the client resends it; only HL7 v2 messages "
                             "are reprocessed")
    if entry.payload is None:
        raise InvalidMessage(f"journal row {row_id} was kept without its payload "
                             f"(journal.payloads: {original.form}): it cannot be reprocessed")
    receiver = hl7_receiver(runtime, entry.channel, reprocess_of=row_id)
    runtime.committer.start()
    try:
        acks, error = asyncio.run(receiver.handle_message(entry.payload))
    finally:
        runtime.committer.stop()  # writes the deferred journal entries first
    rerun = runtime.messages.query(JournalQuery(reprocess_of=row_id, limit=1))
    return Reprocessed(acks, error, rerun[0] if rerun else None)
