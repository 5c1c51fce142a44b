"""The fallback status page's notices: what the public sees."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from failover.models import Notice

SEVERITY_ORDER = {"info": 0, "minor": 1, "major": 2, "critical": 3}
HISTORY = dt.timedelta(days=7)


@dataclass(frozen=True)
class PublicStatus:
    overall: str  # operational | minor | major | critical
    open: list[Notice]
    recent: list[Notice]
    updated_at: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.overall,
            "updated_at": _iso(self.updated_at),
            "notices": [notice_json(n) for n in self.open],
            "recent": [notice_json(n) for n in self.recent],
        }


def public_status(session: Session, now: dt.datetime) -> PublicStatus:
    notices = list(
        session.scalars(
            select(Notice)
            .where(or_(Notice.state == "open", Notice.closed_at >= now - HISTORY))
            .order_by(Notice.created_at.desc(), Notice.id.desc())
        )
    )
    open_ = [n for n in notices if n.state == "open"]
    recent = [n for n in notices if n.state != "open"]
    worst = max((SEVERITY_ORDER.get(n.severity, 2) for n in open_), default=0)
    overall = "operational" if worst == 0 else next(k for k, v in SEVERITY_ORDER.items() if v == worst)
    updated = max((n.updated_at for n in notices), default=None)
    return PublicStatus(overall, open_, recent, updated)


def notice_json(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "title": notice.title,
        "body": notice.body,
        "severity": notice.severity,
        "state": notice.state,
        "incident_id": notice.incident_id,
        "created_at": _iso(notice.created_at),
        "updated_at": _iso(notice.updated_at),
        "closed_at": _iso(notice.closed_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None
