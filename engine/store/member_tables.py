"""Tables of portal membership: members and their notifications (on the index's MetaData)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from mpi.tables import UtcDateTime, metadata

__all__ = ["members", "notifications"]

#: One row per member: statuses, preferences, the current activation and reset tokens (as a
#: SHA-256 digest for lookup and an AES-GCM sealed copy for Resend), the passphrase and
#: password hashes. One row keeps an enrollment to one INSERT.
members = Table(
    "members", metadata,
    Column("id", String(32), primary_key=True),
    Column("patient_id", String(64), nullable=False, unique=True),
    Column("enrollment_status", String(3), nullable=False),
    Column("membership_status", String(16), nullable=False),
    Column("status_since", UtcDateTime, nullable=False),
    Column("email", String(254), nullable=False),
    Column("mobile", String(32), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("communication", String(16), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("proxy_only", Boolean, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("enrolled_by", String(128), nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("printed_activation", Boolean, nullable=False),
    Column("token_digest", String(64), nullable=True, unique=True),
    Column("token_sealed", Text, nullable=True),
    Column("token_issued_at", UtcDateTime, nullable=True),
    Column("token_expires_at", UtcDateTime, nullable=True),
    Column("token_failures", Integer, nullable=False, server_default="0"),
    Column("token_first_failure_at", UtcDateTime, nullable=True),
    Column("token_locked_until", UtcDateTime, nullable=True),
    Column("passphrase_hash", String(512), nullable=True),
    Column("username", String(150), nullable=True),
    Column("username_key", String(150), nullable=True, unique=True),
    Column("password_hash", String(512), nullable=True),
    Column("password_history", Text, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=True),
    Column("reset_digest", String(64), nullable=True, unique=True),
    Column("reset_sealed", Text, nullable=True),
    Column("reset_issued_at", UtcDateTime, nullable=True),
    Column("reset_expires_at", UtcDateTime, nullable=True),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("event_sequence", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_members_membership_status", "membership_status", "status_since"),
)

#: Notifications waiting for (or done with) delivery, written in the same transaction as the
#: change they announce; secret values in ``context`` are sealed. The notifier claims them.
notifications = Table(
    "notifications", metadata,
    Column("id", String(36), primary_key=True),
    Column("member_id", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("carrier", String(64), nullable=True),
    Column("locale", String(16), nullable=False),
    Column("context", Text, nullable=False),
    Column("status", String(8), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_notifications_status_created", "status", "created_at"),
)
