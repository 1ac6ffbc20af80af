"""the message journal: every inbound message, its answer and its effects

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:00:00

Rows are deleted by the retention sweep (``journal.retention``); ``payload`` and
``response`` hold patient data, stored as ``payload_form`` says.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"  # 0005 (membership) follows 0003 on main
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_journal',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('control_id', sa.String(length=200), nullable=False),
    sa.Column('message_type', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('error_code', sa.String(length=32), nullable=False),
    sa.Column('error_location', sa.String(length=64), nullable=False),
    sa.Column('effects', sa.Text(), nullable=False),
    sa.Column('payload_form', sa.String(length=8), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.Column('reprocess_of', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_journal'))
    )
    op.create_index(op.f('ix_message_journal_received_at'), 'message_journal', ['received_at'], unique=False)
    op.create_index(op.f('ix_message_journal_control_id'), 'message_journal', ['control_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_message_journal_control_id'), table_name='message_journal')
    op.drop_index(op.f('ix_message_journal_received_at'), table_name='message_journal')
    op.drop_table('message_journal')
