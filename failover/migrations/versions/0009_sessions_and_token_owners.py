"""server-side console sessions, API tokens owned by a person, room for sealed TOTP secrets

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01 10:12:40.118233

Tokens created before owners existed go to the console user who created them
(``created_by`` is that admin's username); tokens made with the CLI
(``cli:<os user>``) stay ownerless: they keep working and can never approve.
Clear TOTP secrets are sealed by ``failover init``, which holds the key that
migrations do not.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # First, while no table refers to users: SQLite's batch mode copies the table and drops the old one.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.String(length=64), type_=sa.String(length=255), existing_nullable=True
        )

    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("totp_failures", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", failover.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_sessions_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
        batch_op.create_foreign_key("fk_api_tokens_user_id_users", "users", ["user_id"], ["id"])
    op.execute(
        "UPDATE api_tokens SET user_id = (SELECT users.id FROM users WHERE users.username = api_tokens.created_by)"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint("fk_api_tokens_user_id_users", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_column("user_id")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_user_id"))
    op.drop_table("console_sessions")
    # Sealed secrets do not fit the old column: a downgrade forgets second factors (re-enrol after it).
    op.execute("UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE length(totp_secret) > 64")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.String(length=255), type_=sa.String(length=64), existing_nullable=True
        )
