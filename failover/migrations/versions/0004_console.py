"""console: API tokens, and TOTP replay protection for console users

Revision ID: 0004
Revises: 0003 (written against 0001; re-chained after main merged issue 3)
Create Date: 2026-11-28 09:45:21.733125
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", failover.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")

    op.drop_table("api_tokens")
