"""The engine's own tables, on the same MetaData as the index's: inbox, outbox, staff, audit."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text, text

from engine.limits import (
    AUDIT_ACTION_CHARS,
    AUDIT_ACTOR_CHARS,
    AUDIT_OUTCOME_CHARS,
    CHANNEL_CHARS,
    CONTROL_ID_CHARS,
    CORRELATION_ID_CHARS,
    EVENT_ID_CHARS,
    JOURNAL_CODE_CHARS,
    JOURNAL_LOCATION_CHARS,
    JOURNAL_SHORT_CHARS,
    JOURNAL_TYPE_CHARS,
    MESSAGE_TYPE_CHARS,
    OUTBOX_STATUS_CHARS,
    OUTCOME_CHARS,
    ROUTING_KEY_CHARS,
    SENDER_CHARS,
    STAFF_NAME_CHARS,
    SUBJECT_CHARS,
    TOKEN_DIGEST_CHARS,
)
from engine.store.member_tables import member_sessions, members, notifications
from mpi.limits import RECORD_ID_CHARS
from mpi.tables import UtcDateTime, metadata

__all__ = ["audit_log", "inbound_messages", "member_sessions", "members", "message_journal",
           "metadata", "notifications", "outbox", "staff_users", "subject_sequences"]

#: Every committed inbound message, so a resend is acknowledged without applying it twice.
inbound_messages = Table(
    "inbound_messages", metadata,
    Column("sender", String(SENDER_CHARS), primary_key=True),
    Column("control_id", String(CONTROL_ID_CHARS), primary_key=True),
    Column("channel", String(CHANNEL_CHARS), nullable=False),
    Column("message_type", String(MESSAGE_TYPE_CHARS), nullable=False),
    Column("outcome", String(OUTCOME_CHARS), nullable=False),
    Column("patient_ids", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

_WAITING = "status = 'pending' AND next_attempt_at IS NOT NULL"

#: Status events written in the same transaction as the change they describe; the relay
#: publishes them after commit.
outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(EVENT_ID_CHARS), nullable=False, unique=True),
    Column("routing_key", String(ROUTING_KEY_CHARS), nullable=False),
    Column("subject", String(SUBJECT_CHARS), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("correlation_id", String(CORRELATION_ID_CHARS), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Column("status", String(OUTBOX_STATUS_CHARS), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_outbox_status_id", "status", "id"),
    # Rows waiting for a retry hold back their subject's later events (migration 0002).
    Index("ix_outbox_retrying", "subject", "id",
          postgresql_where=text(_WAITING), sqlite_where=text(_WAITING)),
)

#: The last event sequence number handed out per subject (patient, member, ...). The outbox
#: store takes the next numbers from here in the unit of work's own transaction; the row's
#: lock, held until commit, also makes one subject's outbox ids follow its commit order.
subject_sequences = Table(
    "subject_sequences", metadata,
    Column("subject", String(SUBJECT_CHARS), primary_key=True),
    Column("last_sequence", Integer, nullable=False),
)

_ID = String(RECORD_ID_CHARS)  # like the index's ids: ours are 32 characters

#: Staff members and external systems with bearer tokens; only the token's SHA-256 is kept.
staff_users = Table(
    "staff_users", metadata,
    Column("id", _ID, primary_key=True),
    Column("name", String(STAFF_NAME_CHARS), nullable=False, unique=True),
    Column("roles", Text, nullable=False),  # a JSON array of role values
    Column("token_sha256", String(TOKEN_DIGEST_CHARS), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

#: Append-only: no code updates or deletes a row, and migration 0004 adds triggers that
#: refuse UPDATE and DELETE. ``detail`` is a JSON object of ids and codes, never patient data.
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(AUDIT_ACTOR_CHARS), nullable=False, index=True),
    Column("action", String(AUDIT_ACTION_CHARS), nullable=False),
    Column("outcome", String(AUDIT_OUTCOME_CHARS), nullable=False),
    Column("reason", Text, nullable=False),
    Column("member_id", _ID, nullable=True, index=True),
    Column("patient_id", _ID, nullable=True),
    Column("detail", Text, nullable=False),
)

#: Every inbound message with its answer and effects, kept for ``journal.retention``
#: (engine.journal). ``payload`` and ``response`` hold patient data: stored as
#: ``payload_form`` says (sealed with AES-GCM, as received, or not at all), never logged.
message_journal = Table(
    "message_journal", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("channel", String(JOURNAL_SHORT_CHARS), nullable=False),
    Column("sender", String(SENDER_CHARS), nullable=False),
    Column("control_id", String(CONTROL_ID_CHARS), nullable=False, index=True),
    Column("message_type", String(JOURNAL_TYPE_CHARS), nullable=False),
    Column("outcome", String(JOURNAL_SHORT_CHARS), nullable=False),
    Column("error_code", String(JOURNAL_CODE_CHARS), nullable=False),
    Column("error_location", String(JOURNAL_LOCATION_CHARS), nullable=False),
    Column("effects", Text, nullable=False),  # JSON: ids and field names, never values
    Column("payload_form", String(JOURNAL_SHORT_CHARS), nullable=False),
    Column("payload", LargeBinary, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("reprocess_of", BigInteger, nullable=True),
)
