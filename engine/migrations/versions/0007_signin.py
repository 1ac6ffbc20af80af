"""sign-in: lockout state, two-factor challenges, expired passwords, profile address, sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:30:00

Lockout state, the current two-factor challenge and the expired-password mark are columns of
``members`` (one current value per member: a new challenge replaces the old); the password
reset token already is. Sessions are a table of their own (many per member).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lockout_state", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("locked_until", _STAMP, nullable=True))
        batch_op.add_column(sa.Column("otp_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("otp_code_mac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("otp_issued_at", _STAMP, nullable=True))
        batch_op.add_column(sa.Column("otp_expires_at", _STAMP, nullable=True))
        batch_op.add_column(sa.Column("otp_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("password_expired_at", _STAMP, nullable=True))
        batch_op.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_members_otp_digest"), ["otp_digest"])
        batch_op.create_index("ix_members_email", ["email"], unique=False)
        batch_op.create_index("ix_members_password_changed_at", ["password_changed_at"], unique=False)
        batch_op.create_index("ix_members_locked_until", ["locked_until"], unique=False)
    op.create_table(
        "member_sessions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("last_used_at", _STAMP, nullable=False),
        sa.Column("expires_at", _STAMP, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_member_sessions")),
    )
    with op.batch_alter_table("member_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_sessions_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("member_sessions")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_locked_until")
        batch_op.drop_index("ix_members_password_changed_at")
        batch_op.drop_index("ix_members_email")
        batch_op.drop_constraint(batch_op.f("uq_members_otp_digest"), type_="unique")
        for name in ("address", "password_expired_at", "otp_attempts", "otp_expires_at",
                     "otp_issued_at", "otp_code_mac", "otp_digest", "locked_until", "lockout_state"):
            batch_op.drop_column(name)
