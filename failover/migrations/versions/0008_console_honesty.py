"""what recipients see apart from the internal note; operators linked to a contact for approval pages

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activations", schema=None) as batch_op:
        # The text shown to recipients; ``reason`` stays the internal note (audit log only).
        batch_op.add_column(sa.Column("message", sa.Text(), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        # The contact (config/contacts.yaml id) whose phone is paged when an approval waits.
        batch_op.add_column(sa.Column("contact_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("contact_id")
    with op.batch_alter_table("activations", schema=None) as batch_op:
        batch_op.drop_column("message")
