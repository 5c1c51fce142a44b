"""issue 10: last good config versions; escalation pause / cancel; updates sent once; notices resolved in place

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_snapshots",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("saved_at", failover.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("activations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation", sa.String(length=16), server_default="active", nullable=False))
        batch_op.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_activations_request_key"), ["request_key"])
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by_delivery", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notices_resolved_by_delivery"), ["resolved_by_delivery"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_notices_resolved_by_delivery_deliveries"), "deliveries", ["resolved_by_delivery"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notices_resolved_by_delivery_deliveries"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notices_resolved_by_delivery"))
        batch_op.drop_column("resolved_by_delivery")
        batch_op.drop_column("resolution")
    with op.batch_alter_table("activations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_activations_request_key"), type_="unique")
        batch_op.drop_column("request_key")
        batch_op.drop_column("escalation")
    op.drop_table("config_snapshots")
