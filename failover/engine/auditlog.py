"""Reading the audit log: filters, pages, exports and an incident's timeline.

Writing and verifying the chain live in :mod:`failover.engine.audit`; this
module only reads. Pages are keyed by event id (newest first), so a page
stays stable while new events arrive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from failover.engine.queries import iso
from failover.models import AuditEvent

MAX_PAGE = 500
EXPORT_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "incident_id",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class AuditFilter:
    """Every field optional; ``action`` ending in ``*`` matches a prefix (``auth.*``)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    actor: str | None = None
    action: str | None = None
    incident_id: int | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.since is not None:
            query = query.where(AuditEvent.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEvent.at < self.until)
        if self.actor:
            query = query.where(AuditEvent.actor == self.actor)
        if self.action:
            if self.action.endswith("*"):
                prefix = self.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(AuditEvent.action.like(prefix + "%", escape="\\"))
            else:
                query = query.where(AuditEvent.action == self.action)
        if self.incident_id is not None:
            query = query.where(AuditEvent.incident_id == self.incident_id)
        return query


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "incident_id": event.incident_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def page(
    session: Session, filters: AuditFilter, *, before_id: int | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], int | None]:
    """One page, newest first; returns the events and the id to pass as ``before_id`` for the next."""
    limit = max(1, min(limit, MAX_PAGE))
    query = filters.apply(select(AuditEvent))
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [event_json(e) for e in rows], (rows[-1].id if more and rows else None)


def export(session: Session, filters: AuditFilter, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first, read in batches (for CSV and JSON downloads)."""
    last = 0
    while True:
        query = filters.apply(select(AuditEvent)).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
        rows = list(session.scalars(query))
        if not rows:
            return
        for event in rows:
            yield event_json(event)
        last = rows[-1].id
        session.expunge_all()


def timeline(session: Session, incident_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
    query = select(AuditEvent).where(AuditEvent.incident_id == incident_id).order_by(AuditEvent.id).limit(limit)
    return [event_json(e) for e in session.scalars(query)]


def known_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
