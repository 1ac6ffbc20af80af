"""The engine's own tables, on the same MetaData as the index's: inbox and outbox."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, text

from engine.store.member_tables import members, notifications
from mpi.tables import UtcDateTime, metadata

__all__ = ["inbound_messages", "members", "metadata", "notifications", "outbox"]

#: Every committed inbound message, so a resend is acknowledged without applying it twice.
inbound_messages = Table(
    "inbound_messages", metadata,
    Column("sender", String(200), primary_key=True),
    Column("control_id", String(200), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("message_type", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("patient_ids", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

_WAITING = "status = 'pending' AND next_attempt_at IS NOT NULL"

#: Status events written in the same transaction as the change they describe; the relay
#: publishes them after commit.
outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("routing_key", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Column("status", String(8), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_outbox_status_id", "status", "id"),
    # Rows waiting for a retry hold back their subject's later events (migration 0002).
    Index("ix_outbox_retrying", "subject", "id",
          postgresql_where=text(_WAITING), sqlite_where=text(_WAITING)),
)
