"""The engine's own tables, on the same MetaData as the index's: inbox, outbox, staff, audit."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, text

from engine.store.member_tables import members, notifications
from mpi.tables import UtcDateTime, metadata

__all__ = ["audit_log", "inbound_messages", "members", "metadata", "notifications", "outbox",
           "staff_users"]

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

_ID = String(64)  # like the index's ids: ours are 32 characters

#: Staff members and external systems with bearer tokens; only the token's SHA-256 is kept.
staff_users = Table(
    "staff_users", metadata,
    Column("id", _ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("roles", Text, nullable=False),  # a JSON array of role values
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

#: Append-only: no code updates or deletes a row, and migration 0004 adds triggers that
#: refuse UPDATE and DELETE. ``detail`` is a JSON object of ids and codes, never patient data.
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("member_id", _ID, nullable=True, index=True),
    Column("patient_id", _ID, nullable=True),
    Column("detail", Text, nullable=False),
)
