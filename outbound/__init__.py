"""Adapters that send: the outbox relay to the status exchange, and ``events tail``."""

from __future__ import annotations

from outbound.factory import build_relay, open_publisher
from outbound.outbox_admin import STATUSES, count_by_status, list_rows, replay
from outbound.outbox_store import open_outbox_store
from outbound.ports import (
    Delivery,
    OutboxRow,
    OutboxStore,
    OutgoingMessage,
    PublishReport,
    StatusPublisher,
)
from outbound.relay import Relay, RelayPolicy, RelayStats
from outbound.status_events import body_text, event_type, to_cloudevent, to_message
from outbound.tail import follow_outbox, subscribe, tail_events

__all__ = [
    "STATUSES",
    "Delivery",
    "OutboxRow",
    "OutboxStore",
    "OutgoingMessage",
    "PublishReport",
    "Relay",
    "RelayPolicy",
    "RelayStats",
    "StatusPublisher",
    "body_text",
    "build_relay",
    "count_by_status",
    "event_type",
    "follow_outbox",
    "list_rows",
    "open_outbox_store",
    "open_publisher",
    "replay",
    "subscribe",
    "tail_events",
    "to_cloudevent",
    "to_message",
]
