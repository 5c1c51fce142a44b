"""The people directory's tables (issue 13): the roster every use case reads, and how it got there.

``people`` is the merged roster (one row per person; ``removed_at`` set when
no source has them any more - kept, so a running activation still knows who
it reached). ``person_groups`` holds listed and rule-group memberships.
``person_records`` keeps each source's last good view of a person, so sources
merge field by field and a Graph delta only touches what changed.
``people_snapshots`` is the history: each applied, refused or failed sync.
``people_sources`` holds per-source sync state (deltaLink, last good sync).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from failover.clock import utcnow
from failover.models import Base


class PersonRow(Base):
    __tablename__ = "people"
    __table_args__ = (Index("ix_people_phone", "phone"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    department: Mapped[str | None] = mapped_column(String(200))
    office_location: Mapped[str | None] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    listed_groups: Mapped[list[Any]] = mapped_column(default=list)  # groups the sources list (not rule groups)
    sources: Mapped[str] = mapped_column(String(64), default="")  # "graph,yaml"
    snapshot_id: Mapped[int | None] = mapped_column(Integer)  # the snapshot that last changed this row
    removed_at: Mapped[dt.datetime | None]
    phone_verified_at: Mapped[dt.datetime | None]  # replied YES to a verification SMS from this number
    phone_failed_at: Mapped[dt.datetime | None]  # a send to this number failed permanently: fix it
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PersonGroup(Base):
    __tablename__ = "person_groups"
    __table_args__ = (Index("ix_person_groups_group", "group_name", "person_id"),)

    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # listed order first, then rule groups


class PersonRecord(Base):
    __tablename__ = "person_records"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict[str, Any]]


class PeopleSnapshot(Base):
    __tablename__ = "people_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # full | delta | import | rules
    status: Mapped[str] = mapped_column(String(16))  # applied | refused | failed
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    added: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)  # people in force after it
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # first rows of each kind (ids, field names)


class PeopleSource(Base):
    __tablename__ = "people_sources"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    delta_link: Mapped[str | None] = mapped_column(Text)
    last_ok_at: Mapped[dt.datetime | None]  # the newest sync that succeeded (changed or not)
    last_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(128))  # yaml: file hash; rules: rule signature


class Verification(Base):
    """One "reply YES to confirm this is your number" challenge."""

    __tablename__ = "people_verifications"
    __table_args__ = (Index("ix_people_verifications_phone", "phone", "confirmed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    confirmed_at: Mapped[dt.datetime | None]
    delivery_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed


class SelfServiceLink(Base):
    """A personal link to the self-service page: one person, expires, a few tries (only hashes are stored)."""

    __tablename__ = "people_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # What the person entered, waiting for the one-time codes sent to it.
    pending_phone: Mapped[str | None] = mapped_column(String(32))
    pending_email: Mapped[str | None] = mapped_column(String(320))
    pending_language: Mapped[str | None] = mapped_column(String(16))
    phone_code_hash: Mapped[str | None] = mapped_column(String(64))
    email_code_hash: Mapped[str | None] = mapped_column(String(64))
    codes_expire_at: Mapped[dt.datetime | None]
