"""membership: members and notifications

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 13:30:00

One row per member (statuses, preferences, activation and reset tokens as digest plus sealed
copy, passphrase and password hashes), and the notifications written with each change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('members',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('enrollment_status', sa.String(length=3), nullable=False),
    sa.Column('membership_status', sa.String(length=16), nullable=False),
    sa.Column('status_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('communication', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('proxy_only', sa.Boolean(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('enrolled_by', sa.String(length=128), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('printed_activation', sa.Boolean(), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=True),
    sa.Column('token_sealed', sa.Text(), nullable=True),
    sa.Column('token_issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('token_first_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('passphrase_hash', sa.String(length=512), nullable=True),
    sa.Column('username', sa.String(length=150), nullable=True),
    sa.Column('username_key', sa.String(length=150), nullable=True),
    sa.Column('password_hash', sa.String(length=512), nullable=True),
    sa.Column('password_history', sa.Text(), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reset_digest', sa.String(length=64), nullable=True),
    sa.Column('reset_sealed', sa.Text(), nullable=True),
    sa.Column('reset_issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reset_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('patient_id', name=op.f('uq_members_patient_id')),
    sa.UniqueConstraint('reset_digest', name=op.f('uq_members_reset_digest')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_members_token_digest')),
    sa.UniqueConstraint('username_key', name=op.f('uq_members_username_key'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index('ix_members_membership_status', ['membership_status', 'status_since'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('context', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_notifications_status_created', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_created')
        batch_op.drop_index(batch_op.f('ix_notifications_member_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_membership_status')

    op.drop_table('members')
