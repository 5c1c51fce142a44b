"""dispatch batches remember when a task last started them (lost-task detection)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 11:03:14.682766
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", failover.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatch_batches", schema=None) as batch_op:
        batch_op.drop_column("started_at")
