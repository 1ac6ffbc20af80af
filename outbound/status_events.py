"""Outbox rows as CloudEvents 1.0 in structured JSON mode, with their AMQP properties.

The body is the CloudEvent; ``data`` is the JSON the handler stored in the outbox, spliced in
as it is (parsing and re-serialising every event would cost the relay a third of its speed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from engine.broker import ENROLLMENT_QUEUE, SEQUENCE_HEADER
from engine.enrollment_requests import ENROLLMENT_REQUEST_KEY
from outbound.ports import OutboxRow, OutgoingMessage

__all__ = ["CONTENT_TYPE", "UnreadableRow", "body_text", "event_type", "to_cloudevent", "to_message"]

#: The CloudEvents AMQP binding's content type for structured mode.
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SPEC_VERSION = "1.0"


class UnreadableRow(ValueError):
    """The row's ``data`` is not a JSON object: it cannot become an event."""


def event_type(routing_key: str) -> str:
    """``mpi.changed`` -> ``org.portalbridge.mpi.changed.v1``."""
    return f"org.portalbridge.{routing_key}.v1"


def _time(stamp: datetime) -> str:
    return stamp.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _attributes(row: OutboxRow, source: str) -> dict[str, Any]:
    return {
        "specversion": SPEC_VERSION,
        "id": row.event_id,
        "source": source,
        "type": event_type(row.routing_key),
        "subject": row.subject,
        "time": _time(row.occurred_at),
        "datacontenttype": "application/json",
    }


def body_text(row: OutboxRow, source: str) -> str:
    """The event's JSON text, exactly as it is published."""
    data = row.data.strip()
    if not (data.startswith("{") and data.endswith("}")):
        raise UnreadableRow(f"outbox row {row.id}: data is not a JSON object")
    head = orjson.dumps(_attributes(row, source)).decode()
    return f'{head[:-1]},"data":{data}}}'


def to_cloudevent(row: OutboxRow, source: str) -> dict[str, Any]:
    """The event exactly as published, as a dict (``events tail``, tests)."""
    event: dict[str, Any] = orjson.loads(body_text(row, source))
    return event


def to_message(row: OutboxRow, source: str) -> OutgoingMessage:
    """The AMQP message for ``row``; raises :class:`UnreadableRow` for a corrupt row.

    An automated-enrollment request is not an event: its stored JSON goes as it is to the
    request queue (through the default exchange), as an external system would publish it.
    """
    if row.routing_key == ENROLLMENT_REQUEST_KEY:
        return _request_message(row)
    return OutgoingMessage(
        routing_key=row.routing_key,
        body=body_text(row, source).encode("utf-8"),
        message_id=row.event_id,
        correlation_id=row.correlation_id,
        headers={SEQUENCE_HEADER: row.sequence},
        content_type=CONTENT_TYPE,
        timestamp=row.occurred_at,
    )


def _request_message(row: OutboxRow) -> OutgoingMessage:
    data = row.data.strip()
    if not (data.startswith("{") and data.endswith("}")):
        raise UnreadableRow(f"outbox row {row.id}: data is not a JSON object")
    return OutgoingMessage(routing_key=ENROLLMENT_QUEUE, body=data.encode("utf-8"),
                           message_id=row.event_id, correlation_id=row.correlation_id, headers={},
                           content_type="application/json", timestamp=row.occurred_at, exchange="")
