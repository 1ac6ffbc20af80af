"""event sequence numbers from the database: one counter row per subject

Revision ID: 0003
Revises: 0004
Create Date: 2026-12-01 10:00:00

Until now each handler bumped ``mpi_patients.event_sequence`` in memory, so two writers on one
patient could hand out the same number. The outbox store now takes the next numbers of a
subject (patient, member, ...) from ``subject_sequences`` inside the unit of work; the
counter row's lock also orders concurrent writers of one subject. The counters start where
the outbox and the patients left off.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0004"  # 0004 (staff, audit) landed on main first
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_sequences",
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_subject_sequences")),
    )
    op.execute(
        "INSERT INTO subject_sequences (subject, last_sequence)"
        " SELECT subject, max(last_sequence) FROM ("
        "  SELECT subject, sequence AS last_sequence FROM outbox"
        "  UNION ALL SELECT id, event_sequence FROM mpi_patients WHERE event_sequence > 0"
        " ) AS known GROUP BY subject")
    with op.batch_alter_table("mpi_patients", schema=None) as batch_op:
        batch_op.drop_column("event_sequence")


def downgrade() -> None:
    with op.batch_alter_table("mpi_patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_sequence", sa.Integer(), nullable=False,
                                      server_default="0"))
    op.execute(
        "UPDATE mpi_patients SET event_sequence = (SELECT s.last_sequence FROM subject_sequences s"
        " WHERE s.subject = mpi_patients.id) WHERE id IN (SELECT subject FROM subject_sequences)")
    op.drop_table("subject_sequences")
