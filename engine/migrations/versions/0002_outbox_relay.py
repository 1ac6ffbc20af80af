"""outbox relay: index of rows waiting to be retried

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00

The relay holds back a subject's later events while an earlier one waits for its retry, so
that events leave in order per subject. It asks for those waiting rows on every claim; this
partial index keeps that question cheap however large the backlog (normally it is empty).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WAITING = sa.text("status = 'pending' AND next_attempt_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_outbox_retrying", "outbox", ["subject", "id"], unique=False,
                    postgresql_where=_WAITING, sqlite_where=_WAITING)


def downgrade() -> None:
    op.drop_index("ix_outbox_retrying", table_name="outbox")
