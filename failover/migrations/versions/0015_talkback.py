"""staff talking back: outage reports, operator phones, phone requests, polls, bridges

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC = failover.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "staff_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_reports", schema=None) as batch_op:
        batch_op.create_index("ix_staff_reports_service_at", ["service", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_reports_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_reports_reporter"), ["reporter"], unique=False)
    op.create_table(
        "operator_phones",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failed_at", UTC(), nullable=True),
        sa.Column("locked_at", UTC(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("phone"),
    )
    op.create_table(
        "phone_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("runbook_id", sa.String(length=64), nullable=True),
        sa.Column("activation_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["activation_id"], ["activations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("phone_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_requests_user_id"), ["user_id"], unique=False)
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activation_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("opened_at", UTC(), nullable=False),
        sa.Column("closed_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["activation_id"], ["activations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activation_id", "step", name="uq_poll_step"),
    )
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_polls_activation_id"), ["activation_id"], unique=False)
    op.create_table(
        "poll_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=False),
        sa.Column("answered_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("poll_id", "person_id", name="uq_poll_answer"),
    )
    with op.batch_alter_table("poll_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_poll_answers_poll_id"), ["poll_id"], unique=False)
    op.create_table(
        "bridges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activation_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("pin", sa.String(length=16), nullable=False),
        sa.Column("conference_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["activation_id"], ["activations.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activation_id", "step", name="uq_bridge_step"),
    )
    with op.batch_alter_table("bridges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bridges_activation_id"), ["activation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bridges_incident_id"), ["incident_id"], unique=False)
    op.create_table(
        "bridge_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bridge_id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("joined_at", UTC(), nullable=True),
        sa.Column("left_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["bridge_id"], ["bridges.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bridge_id", "call_sid", name="uq_bridge_call"),
    )
    with op.batch_alter_table("bridge_participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bridge_participants_bridge_id"), ["bridge_id"], unique=False)


def downgrade() -> None:
    for table in ("bridge_participants", "bridges", "poll_answers", "polls", "phone_requests", "operator_phones"):
        op.drop_table(table)
    with op.batch_alter_table("staff_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_reports_reporter"))
        batch_op.drop_index(batch_op.f("ix_staff_reports_at"))
        batch_op.drop_index("ix_staff_reports_service_at")
    op.drop_table("staff_reports")
