"""initial schema: patient index, inbox, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 16:27:07.744260
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('control_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('message_type', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('patient_ids', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sender', 'control_id', name=op.f('pk_inbound_messages'))
    )
    op.create_table('mpi_identifiers',
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('authority', sa.String(length=200), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('type_code', sa.String(length=16), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('record_id', 'authority', 'value', name=op.f('pk_mpi_identifiers'))
    )
    with op.batch_alter_table('mpi_identifiers', schema=None) as batch_op:
        batch_op.create_index('ix_mpi_identifiers_lookup', ['authority', 'value'], unique=False)

    op.create_table('mpi_patients',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('best', sa.Text(), nullable=False),
    sa.Column('provenance', sa.Text(), nullable=False),
    sa.Column('winner_facility', sa.String(length=64), nullable=False),
    sa.Column('winner_tier', sa.Integer(), nullable=True),
    sa.Column('event_sequence', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_patients'))
    )
    op.create_table('mpi_source_records',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('facility', sa.String(length=64), nullable=False),
    sa.Column('authority', sa.String(length=200), nullable=False),
    sa.Column('mrn', sa.String(length=200), nullable=False),
    sa.Column('demographics', sa.Text(), nullable=False),
    sa.Column('family_name', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.String(length=10), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_source_records')),
    sa.UniqueConstraint('facility', 'authority', 'mrn', name='uq_mpi_source_records_key')
    )
    with op.batch_alter_table('mpi_source_records', schema=None) as batch_op:
        batch_op.create_index('ix_mpi_source_records_family_birth', ['family_name', 'birth_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_source_records_patient_id'), ['patient_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('routing_key', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('correlation_id', sa.String(length=200), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status_id', ['status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_id')

    op.drop_table('outbox')
    with op.batch_alter_table('mpi_source_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_source_records_patient_id'))
        batch_op.drop_index('ix_mpi_source_records_family_birth')

    op.drop_table('mpi_source_records')
    op.drop_table('mpi_patients')
    with op.batch_alter_table('mpi_identifiers', schema=None) as batch_op:
        batch_op.drop_index('ix_mpi_identifiers_lookup')

    op.drop_table('mpi_identifiers')
    op.drop_table('inbound_messages')
