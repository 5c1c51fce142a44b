"""readiness: heartbeats of workers and the beat; canary runs

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("started_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("started_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("deadline_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("receipt_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("finished_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("canary_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_canary_runs_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_canary_runs_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index("ix_canary_runs_pending", ["outcome", "deadline_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("canary_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_canary_runs_pending")
        batch_op.drop_index(batch_op.f("ix_canary_runs_provider_id"))
        batch_op.drop_index(batch_op.f("ix_canary_runs_started_at"))
    op.drop_table("canary_runs")
    op.drop_table("heartbeats")
