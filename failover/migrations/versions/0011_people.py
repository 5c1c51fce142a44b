"""people directory: the roster, group memberships, per-source records, snapshots, sync state, verifications

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:30:20.247073
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import failover.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("office_location", sa.String(length=200), nullable=True),
        sa.Column("job_title", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("listed_groups", sa.JSON(), nullable=False),
        sa.Column("sources", sa.String(length=64), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("phone_verified_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("phone_failed_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("updated_at", failover.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index("ix_people_phone", ["phone"], unique=False)

    op.create_table(
        "people_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("people_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_snapshots_at"), ["at"], unique=False)

    op.create_table(
        "people_sources",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("last_ok_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("signature", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "people_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("sent_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("people_verifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_verifications_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_people_verifications_phone", ["phone", "confirmed_at"], unique=False)

    op.create_table(
        "person_records",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("source", "person_id"),
    )
    op.create_table(
        "person_groups",
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
        ),
        sa.PrimaryKeyConstraint("person_id", "group_name"),
    )
    with op.batch_alter_table("person_groups", schema=None) as batch_op:
        batch_op.create_index("ix_person_groups_group", ["group_name", "person_id"], unique=False)
    op.create_table(
        "people_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", failover.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", failover.models.UTCDateTime(), nullable=True),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("pending_phone", sa.String(length=32), nullable=True),
        sa.Column("pending_email", sa.String(length=320), nullable=True),
        sa.Column("pending_language", sa.String(length=16), nullable=True),
        sa.Column("phone_code_hash", sa.String(length=64), nullable=True),
        sa.Column("email_code_hash", sa.String(length=64), nullable=True),
        sa.Column("codes_expire_at", failover.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("people_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_links_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("people_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_links_person_id"))
    op.drop_table("people_links")
    with op.batch_alter_table("person_groups", schema=None) as batch_op:
        batch_op.drop_index("ix_person_groups_group")

    op.drop_table("person_groups")
    op.drop_table("person_records")
    with op.batch_alter_table("people_verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_people_verifications_phone")
        batch_op.drop_index(batch_op.f("ix_people_verifications_person_id"))

    op.drop_table("people_verifications")
    op.drop_table("people_sources")
    with op.batch_alter_table("people_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_snapshots_at"))

    op.drop_table("people_snapshots")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_phone")

    op.drop_table("people")
