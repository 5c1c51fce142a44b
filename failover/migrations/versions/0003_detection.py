"""outage detection: watched services, votes, Microsoft issues, signals

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28 09:45:43.034552
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detection_votes",
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("origin", sa.String(length=120), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("since", failover.models.UTCDateTime(), nullable=False),
        sa.Column("seen_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("voter", "service"),
    )
    op.create_table(
        "service_issues",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("classification", sa.String(length=40), nullable=False),
        sa.Column("is_resolved", sa.Boolean(), nullable=False),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.Column("feature", sa.String(length=200), nullable=True),
        sa.Column("latest_post", sa.Text(), nullable=True),
        sa.Column("latest_post_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("started_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("ended_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("last_modified_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("seen_at", failover.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("service_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_issues_service"), ["service"], unique=False)

    watch_head = op.create_table(
        "watch_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("graph_state", sa.String(length=16), nullable=True),
        sa.Column("graph_detail", sa.Text(), nullable=True),
        sa.Column("graph_checked_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("graph_ok_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("graph_backoff_until", failover.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row every detector evaluation locks, so two watchers never decide at the same time.
    op.bulk_insert(watch_head, [{"id": 1}])
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=120), nullable=False),
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ms_issue_id", sa.String(length=64), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_signals_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index("ix_signals_service_at", ["service", "at"], unique=False)

    op.create_table(
        "watched_services",
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("since", failover.models.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("graph_status", sa.String(length=40), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("updated_at", failover.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
        ),
        sa.PrimaryKeyConstraint("service"),
    )


def downgrade() -> None:
    op.drop_table("watched_services")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_service_at")
        batch_op.drop_index(batch_op.f("ix_signals_incident_id"))
        batch_op.drop_index(batch_op.f("ix_signals_at"))

    op.drop_table("signals")
    op.drop_table("watch_head")
    with op.batch_alter_table("service_issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_issues_service"))

    op.drop_table("service_issues")
    op.drop_table("detection_votes")
