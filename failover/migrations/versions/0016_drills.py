"""scheduled drills: each (schedule, time slot) runs once

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("slot", failover.models.UTCDateTime(), nullable=False),
        sa.Column("runbook_id", sa.String(length=64), nullable=False),
        sa.Column("activation_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", failover.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["activation_id"], ["activations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule", "slot", name="uq_drill_run_once"),
    )


def downgrade() -> None:
    op.drop_table("drill_runs")
