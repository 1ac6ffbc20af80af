"""``GET /workbench/messages`` and ``/workbench/messages/{id}``: the message journal for staff.

The list gives what happened to each message (sender, control id, outcome, error code and
location, effects as ids) and never a payload; one message by id adds the message and the
answer as received and as sent. Both are for administrators only: a journal row holds a
whole HL7 message or FHIR resource, every demographic of a patient included. Each answer is
written to the audit log first (``messages.list``, ``messages.read``); if the entry cannot
be written, nothing is served.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from engine.audit import AuditEntry, AuditLog, parse_since
from engine.domain.clock import Clock
from engine.errors import ConfigurationError, TransientFailure
from engine.journal import JournalQuery, JournalStore
from engine.staff import Role, StaffPrincipal
from inbound.http.auth import StaffAuth, audit_before_serving

__all__ = ["MAX_MESSAGES_LIMIT", "MESSAGE_READERS", "messages_router"]

#: Who may read the message journal: it holds whole messages, so administrators only.
MESSAGE_READERS = (Role.ADMINISTRATOR,)
MAX_MESSAGES_LIMIT = 1000
_UNAVAILABLE = HTTPException(503, "the message journal is unavailable; try again shortly",
                             headers={"Retry-After": "5"})


def messages_router(auth: StaffAuth, store: JournalStore, audit: AuditLog, clock: Clock) -> APIRouter:
    """The journal's routes; every error is a 4xx or 503 with a message."""
    router = APIRouter(prefix="/workbench", tags=["workbench"])
    reader = Depends(auth.requires(*MESSAGE_READERS))

    @router.get("/messages")
    def list_messages(
        *,
        since: Annotated[str | None, Query(max_length=64, description=(
            "an ISO 8601 time, or a duration back from now: 30m, 1h, 7d"))] = None,
        outcome: Annotated[str | None, Query(max_length=8, description=(
            "AA, AE, AR, or an HTTP status; a trailing * matches by prefix (4*)"))] = None,
        channel: Annotated[str | None, Query(max_length=8, description="mllp, amqp, fhir")] = None,
        sender: Annotated[str | None, Query(max_length=200, description=(
            "APP^FACILITY, or the FHIR client; a trailing * matches by prefix"))] = None,
        control_id: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_MESSAGES_LIMIT)] = 100,
        staff: StaffPrincipal = reader,
    ) -> dict[str, Any]:
        """Journaled messages matching every filter given, newest first (no payloads)."""
        try:
            start = parse_since(since, clock.now()) if since else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        query = JournalQuery(since=start, outcome=outcome, channel=channel, sender=sender,
                             control_id=control_id, limit=limit)
        try:
            records = store.query(query)
        except TransientFailure:
            raise _UNAVAILABLE from None
        audit_before_serving(audit, AuditEntry(actor=staff.actor, action="messages.list", outcome="success",
                                 detail={"results": str(len(records))}))
        return {"count": len(records), "messages": [record.summary() for record in records]}

    @router.get("/messages/{message_id}")
    def read_message(message_id: int, staff: StaffPrincipal = reader) -> dict[str, Any]:
        """One journaled message with its payload and response (as text and as base64)."""
        try:
            record = store.get(message_id)
        except TransientFailure:
            raise _UNAVAILABLE from None
        except ConfigurationError as exc:  # sealed under another key
            raise HTTPException(500, exc.reason) from None
        if record is None:
            raise HTTPException(404, f"no journaled message {message_id}")
        audit_before_serving(audit, AuditEntry(actor=staff.actor, action="messages.read", outcome="success",
                                 detail={"journal_id": str(record.id),
                                         "control_id": record.entry.control_id[:200]}))
        entry = record.entry
        return {**record.summary(), **_bytes("payload", entry.payload),
                **_bytes("response", entry.response)}

    return router


def _bytes(name: str, value: bytes | None) -> dict[str, str | None]:
    """``value`` as text (UTF-8, unreadable bytes replaced; HL7 segments one a line) and
    exactly, as base64."""
    if value is None:
        return {name: None, f"{name}_base64": None}
    text = value.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return {name: text, f"{name}_base64": base64.b64encode(value).decode("ascii")}

