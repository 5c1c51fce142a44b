"""The fallback status page's notices: what the public sees, and operators' hand-written ones.

Runbooks post notices through the ``status`` channel; operators post, edit and
close them by hand here. Every change is audited with the title and a hash of
the body (the body itself is public on the status page).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.engine import audit
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import Incident, Notice, NoticeUpdate
from failover.statusrows import add_update, bump

SEVERITY_ORDER = {"info": 0, "minor": 1, "major": 2, "critical": 3}
SEVERITIES = tuple(SEVERITY_ORDER)
MAX_TITLE, MAX_BODY = 300, 10_000
HISTORY = dt.timedelta(days=7)
CLOSED_TEXT = "This incident has been resolved."


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
        "resolution": notice.resolution,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


# -- notices by hand ---------------------------------------------------------------


def post(
    session: Session, *, title: str, body: str, severity: str, actor: str, incident_id: int | None = None
) -> Notice:
    title, body = _valid(title, body, severity)
    if incident_id is not None and session.get(Incident, incident_id) is None:
        raise NotFound(f"no incident {incident_id}")
    now = utcnow()
    notice = Notice(
        title=title,
        body=body,
        severity=severity,
        state="open",
        incident_id=incident_id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(notice)
    session.flush()
    add_update(session, notice, progress="investigating", body=body, actor=actor, now=now)
    _audit(session, "notice.posted", actor, notice)
    return notice


def edit(
    session: Session,
    *,
    notice_id: int,
    actor: str,
    title: str | None = None,
    body: str | None = None,
    severity: str | None = None,
) -> Notice:
    notice = _locked(session, notice_id)
    if notice.state != "open":
        raise Conflict(f"notice {notice_id} is closed; post a new one")
    new_title, new_body = _valid(
        notice.title if title is None else title,
        notice.body if body is None else body,
        severity or notice.severity,
    )
    notice.title, notice.body, notice.severity = new_title, new_body, severity or notice.severity
    notice.updated_at = utcnow()
    first = session.scalars(
        select(NoticeUpdate).where(NoticeUpdate.notice_id == notice.id).order_by(NoticeUpdate.id).limit(1)
    ).first()
    if first is not None:  # an edit corrects the posted text; later updates stay as they were
        first.body = new_body
    bump(session, notice.updated_at)
    _audit(session, "notice.edited", actor, notice)
    return notice


def close(session: Session, *, notice_id: int, actor: str) -> Notice:
    notice = _locked(session, notice_id)
    if notice.state != "open":
        raise Conflict(f"notice {notice_id} is already closed")
    now = utcnow()
    notice.state, notice.closed_at, notice.updated_at = "closed", now, now
    done = "completed" if notice.kind == "maintenance" else "resolved"
    add_update(session, notice, progress=done, body=notice.resolution or CLOSED_TEXT, actor=actor, now=now)
    _audit(session, "notice.closed", actor, notice)
    return notice


def list_notices(session: Session, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(Notice).order_by(Notice.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Notice.state == state)
    return [notice_json(n) | {"created_by": n.created_by} for n in session.scalars(query)]


def get(session: Session, notice_id: int) -> dict[str, Any]:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice_json(notice) | {"created_by": notice.created_by}


def _valid(title: str, body: str, severity: str) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise InvalidRequest("a notice needs a title")
    if len(title) > MAX_TITLE:
        raise InvalidRequest(f"the title is longer than {MAX_TITLE} characters")
    if not body:
        raise InvalidRequest("a notice needs a text")
    if len(body) > MAX_BODY:
        raise InvalidRequest(f"the text is longer than {MAX_BODY} characters")
    if severity not in SEVERITY_ORDER:
        raise InvalidRequest(f"severity must be one of {', '.join(SEVERITIES)}")
    return title, body


def _locked(session: Session, notice_id: int) -> Notice:
    notice = session.scalars(select(Notice).where(Notice.id == notice_id).with_for_update()).one_or_none()
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def _audit(session: Session, action: str, actor: str, notice: Notice) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        target_type="notice",
        target_id=notice.id,
        incident_id=notice.incident_id,
        details={
            "title": notice.title,
            "severity": notice.severity,
            "body_sha256": hashlib.sha256(notice.body.encode()).hexdigest(),
        },
    )
