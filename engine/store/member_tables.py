"""Tables of portal membership: members and their notifications (on the index's MetaData)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from engine import limits as L
from mpi.limits import RECORD_ID_CHARS
from mpi.tables import UtcDateTime, metadata

__all__ = ["member_sessions", "members", "notifications"]

#: One row per member: statuses, preferences, the current activation and reset tokens (as a
#: SHA-256 digest for lookup and an AES-GCM sealed copy for Resend), the passphrase and
#: password hashes. One row keeps an enrollment to one INSERT.
members = Table(
    "members", metadata,
    Column("id", String(L.MEMBER_ID_CHARS), primary_key=True),
    Column("patient_id", String(RECORD_ID_CHARS), nullable=False, unique=True),
    Column("enrollment_status", String(L.ENROLLMENT_STATUS_CHARS), nullable=False),
    Column("membership_status", String(L.MEMBERSHIP_STATUS_CHARS), nullable=False),
    Column("status_since", UtcDateTime, nullable=False),
    Column("email", String(L.EMAIL_CHARS), nullable=False),
    Column("mobile", String(L.MOBILE_CHARS), nullable=False),
    Column("carrier", String(L.CARRIER_CHARS), nullable=False),
    Column("communication", String(L.COMMUNICATION_CHARS), nullable=False),
    Column("locale", String(L.LOCALE_CHARS), nullable=False),
    Column("proxy_only", Boolean, nullable=False),
    Column("mode", String(L.ENROLLMENT_MODE_CHARS), nullable=False),
    Column("enrolled_by", String(L.ENROLLED_BY_CHARS), nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("printed_activation", Boolean, nullable=False),
    Column("token_digest", String(L.TOKEN_DIGEST_CHARS), nullable=True, unique=True),
    Column("token_sealed", Text, nullable=True),
    Column("token_issued_at", UtcDateTime, nullable=True),
    Column("token_expires_at", UtcDateTime, nullable=True),
    Column("token_failures", Integer, nullable=False, server_default="0"),
    Column("token_first_failure_at", UtcDateTime, nullable=True),
    Column("token_locked_until", UtcDateTime, nullable=True),
    Column("passphrase_hash", String(L.SECRET_HASH_CHARS), nullable=True),
    Column("username", String(L.USERNAME_CHARS), nullable=True),
    Column("username_key", String(L.USERNAME_CHARS), nullable=True, unique=True),
    Column("password_hash", String(L.SECRET_HASH_CHARS), nullable=True),
    Column("password_history", Text, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=True),
    Column("reset_digest", String(L.TOKEN_DIGEST_CHARS), nullable=True, unique=True),
    Column("reset_sealed", Text, nullable=True),
    Column("reset_issued_at", UtcDateTime, nullable=True),
    Column("reset_expires_at", UtcDateTime, nullable=True),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # sign-in (0007): failed sign-ins and the lock (JSON), the current two-factor challenge,
    # the scheduler's mark on an expired password, the member's own postal address (JSON)
    Column("lockout_state", Text, nullable=True),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("otp_digest", String(L.TOKEN_DIGEST_CHARS), nullable=True, unique=True),
    Column("otp_code_mac", String(L.TOKEN_DIGEST_CHARS), nullable=True),
    Column("otp_issued_at", UtcDateTime, nullable=True),
    Column("otp_expires_at", UtcDateTime, nullable=True),
    Column("otp_attempts", Integer, nullable=False, server_default="0"),
    Column("password_expired_at", UtcDateTime, nullable=True),
    Column("address", Text, nullable=True),
    Index("ix_members_membership_status", "membership_status", "status_since"),
    Index("ix_members_email", "email"),
    Index("ix_members_password_changed_at", "password_changed_at"),
    Index("ix_members_locked_until", "locked_until"),
)

#: Portal sessions: the SHA-256 of the opaque token (never the token), its member, and when
#: it was made, last used and ends at the latest (absolute lifetime); idle expiry is
#: ``last_used_at`` plus the policy's idle lifetime, checked at each use.
member_sessions = Table(
    "member_sessions", metadata,
    Column("digest", String(L.TOKEN_DIGEST_CHARS), primary_key=True),
    Column("member_id", String(L.MEMBER_ID_CHARS), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

#: Notifications waiting for (or done with) delivery, written in the same transaction as the
#: change they announce; secret values in ``context`` are sealed. The notifier claims them.
notifications = Table(
    "notifications", metadata,
    Column("id", String(L.NOTIFICATION_ID_CHARS), primary_key=True),
    Column("member_id", String(L.MEMBER_ID_CHARS), nullable=False, index=True),
    Column("kind", String(L.NOTIFICATION_KIND_CHARS), nullable=False),
    Column("channel", String(L.NOTIFICATION_CHANNEL_CHARS), nullable=False),
    Column("recipient", String(L.EMAIL_CHARS), nullable=False),
    Column("carrier", String(L.CARRIER_CHARS), nullable=True),
    Column("locale", String(L.LOCALE_CHARS), nullable=False),
    Column("context", Text, nullable=False),
    Column("status", String(L.NOTIFICATION_STATUS_CHARS), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_notifications_status_created", "status", "created_at"),
)
