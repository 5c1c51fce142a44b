"""delivery tracking, replies and escalation

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-28 09:47:33
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_limits",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("window_start", failover.models.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "opt_outs",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("created_at", failover.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("phone"),
    )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=True),
        sa.Column("progress", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("applied_at", failover.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "event_key", name="uq_provider_event_once"),
    )
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_events_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_provider_events_received_at"), ["received_at"], unique=False)

    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("first_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("answered_at", failover.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activation_id"],
            ["activations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activation_id", "person_id", name="uq_answer_once"),
    )
    op.create_table(
        "escalation_timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activation_id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("due_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("fired_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("paged", sa.Integer(), nullable=False),
        sa.Column("limited", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activation_id"],
            ["activations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activation_id", "entry", name="uq_escalation_once"),
    )
    with op.batch_alter_table("escalation_timers", schema=None) as batch_op:
        batch_op.create_index("ix_escalation_timers_due", ["fired_at", "due_at"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("provider_status", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", failover.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("followed_up_at", failover.models.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_deliveries_person", ["person_id", "activation_id"], unique=False)
        batch_op.create_index("ix_deliveries_status_followup", ["status", "followed_up_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_followup")
        batch_op.drop_index("ix_deliveries_person")
        batch_op.drop_column("followed_up_at")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("provider_status")
        batch_op.drop_column("receipt")

    with op.batch_alter_table("escalation_timers", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_timers_due")

    op.drop_table("escalation_timers")
    op.drop_table("answers")
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_events_received_at"))
        batch_op.drop_index(batch_op.f("ix_provider_events_delivery_id"))

    op.drop_table("provider_events")
    op.drop_table("opt_outs")
    op.drop_table("inbound_limits")
