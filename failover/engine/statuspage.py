"""The public status page over the database: what it shows, and operators' incidents and updates.

A public incident is a ``Notice`` (runbooks post them through the status
channel, operators by hand) with a timeline of ``NoticeUpdate`` rows. A
maintenance window is the same row with ``kind = maintenance`` and a window.
Every change is audited (titles and a hash of the text: the text itself is
public) and moves the page revision, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from failover.domain import statuspage as sp
from failover.engine import audit
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import Notice, NoticeUpdate
from failover.statusrows import add_update

RECENT = dt.timedelta(days=14)  # resolved incidents listed under "Past incidents"
HISTORY = dt.timedelta(days=sp.UPTIME_DAYS)


# -- reading ---------------------------------------------------------------------------------------------


def view(session: Session, page: sp.Page, *, now: dt.datetime, heartbeat_s: int, public_url: str) -> sp.PageView:
    """Everything the page, its feeds and its JSON show, read in one go."""
    notices = list(
        session.scalars(
            select(Notice).where(
                or_(
                    Notice.state == "open",
                    Notice.closed_at >= now - HISTORY,
                    Notice.scheduled_until >= now - HISTORY,
                )
            )
        )
    )
    updates: dict[int, list[NoticeUpdate]] = defaultdict(list)
    if notices:
        for row in session.scalars(
            select(NoticeUpdate)
            .where(NoticeUpdate.notice_id.in_([n.id for n in notices]))
            .order_by(NoticeUpdate.created_at.desc(), NoticeUpdate.id.desc())
        ):
            updates[row.notice_id].append(row)
    known = set(page.names)
    items = [_incident(n, updates[n.id], known) for n in notices]
    running = [i for i in items if i.kind == "maintenance" and _running(i, now)]
    incidents = sorted((i for i in items if i.kind != "maintenance" and i.open), key=lambda i: i.created_at)
    spans = [_span(i, now) for i in items]
    states = sp.component_states(page.names, [s for s, i in zip(spans, items, strict=True) if _affects_now(i, now)])
    components = [
        sp.ComponentView(
            c.name, c.id, c.group, c.description, states[c.name], position, sp.uptime(c.name, spans, now=now)
        )
        for position, c in enumerate(page.components, start=1)
    ]
    maintenances = sorted(
        (i for i in items if i.kind == "maintenance" and i.open), key=lambda i: i.scheduled_for or i.created_at
    )
    history = sorted(
        (i for i in items if not i.open and (i.resolved_at or i.updated_at) >= now - RECENT),
        key=lambda i: i.resolved_at or i.updated_at,
        reverse=True,
    )
    impacts = [i.impact for i in incidents] + (["maintenance"] if running else [])
    updated = max((i.updated_at for i in items), default=None)
    return sp.PageView(
        brand=page.brand,
        generated_at=now,
        updated_at=updated,
        indicator=sp.indicator(states.values(), impacts),
        components=components,
        incidents=list(reversed(incidents)),
        maintenances=maintenances,
        history=history,
        heartbeat_s=heartbeat_s,
        public_url=public_url,
    )


def _incident(notice: Notice, rows: list[NoticeUpdate], known: set[str]) -> sp.IncidentView:
    impact = "maintenance" if notice.kind == "maintenance" else sp.SEVERITY_IMPACT.get(notice.severity, "major")
    components = {k: v for k, v in (notice.components or {}).items() if k in known}
    progress = notice.progress or ("resolved" if notice.state == "closed" else "investigating")
    if notice.state == "closed" and progress not in sp.CLOSED_PROGRESS:
        progress = "completed" if notice.kind == "maintenance" else "resolved"
    timeline = [
        sp.UpdateView(u.id, u.progress, u.body, u.created_at, {k: v for k, v in (u.components or {}).items()})
        for u in rows
    ] or [sp.UpdateView(0, progress, notice.body, notice.created_at, components)]  # notices from before updates
    return sp.IncidentView(
        id=notice.id,
        kind=notice.kind or "incident",
        name=notice.title,
        impact=impact,
        progress=progress,
        created_at=notice.created_at,
        updated_at=max(notice.updated_at, timeline[0].created_at),
        resolved_at=notice.closed_at,
        scheduled_for=notice.scheduled_for,
        scheduled_until=notice.scheduled_until,
        components=components,
        updates=timeline,
    )


def _running(item: sp.IncidentView, now: dt.datetime) -> bool:
    if item.progress in ("in_progress", "verifying"):
        return True
    if item.progress != "scheduled" or item.scheduled_for is None:
        return False
    return item.scheduled_for <= now < (item.scheduled_until or now + dt.timedelta(seconds=1))


def _affects_now(item: sp.IncidentView, now: dt.datetime) -> bool:
    return _running(item, now) if item.kind == "maintenance" else item.open


def _span(item: sp.IncidentView, now: dt.datetime) -> sp.Span:
    if item.kind == "maintenance":
        start = item.scheduled_for or item.created_at
        end = item.resolved_at or item.scheduled_until
        if end is not None and end < start:
            end = start
        return sp.Span({name: sp.MAINTENANCE for name in item.components}, start, end)
    return sp.Span(item.components, item.created_at, item.resolved_at)


# -- writing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """An operator's incident or update as it will appear, for the preview before it is posted."""

    kind: str
    title: str
    body: str
    impact: str
    progress: str
    components: dict[str, str]
    scheduled_for: dt.datetime | None = None
    scheduled_until: dt.datetime | None = None


def draft(
    page: sp.Page,
    *,
    kind: str = "incident",
    title: str | None,
    body: str | None,
    impact: str = "major",
    progress: str | None = None,
    components: dict[str, str] | None = None,
    scheduled_for: dt.datetime | None = None,
    scheduled_until: dt.datetime | None = None,
    need_title: bool = True,
) -> Draft:
    """Validate what an operator typed: InvalidRequest (a 400) naming the problem."""
    try:
        if kind not in ("incident", "maintenance"):
            raise ValueError("kind must be incident or maintenance")
        name, text = sp.valid_text(title, body, need_title=need_title)
        try:
            progress = sp.valid_progress(kind, progress or sp.progress_states(kind)[0])
        except ValueError as exc:
            if not need_title:  # an update: the incident's kind decides, the request cannot change it
                raise Conflict(
                    f"this is a{'n incident' if kind == 'incident' else ' maintenance window'}: {exc}"
                ) from None
            raise
        if kind == "incident" and impact not in sp.IMPACTS and (need_title or impact):  # "": an update keeps it
            raise ValueError(f"impact must be one of {', '.join(sp.IMPACTS)}")
        chosen = sp.valid_components(components or {}, page.names)
        if kind == "maintenance" and need_title:  # an update keeps its window
            if scheduled_for is None or scheduled_until is None:
                raise ValueError("a maintenance window needs a start and an end")
            if scheduled_until <= scheduled_for:
                raise ValueError("a maintenance window must end after it starts")
        if kind == "maintenance":
            chosen = {name: sp.MAINTENANCE for name in chosen}
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return Draft(kind, name, text, impact, progress, chosen, scheduled_for, scheduled_until)


def open_incident(session: Session, item: Draft, *, actor: str, now: dt.datetime) -> Notice:
    closed = item.progress in sp.CLOSED_PROGRESS
    notice = Notice(
        title=item.title,
        body=item.body,
        severity="info" if item.kind == "maintenance" else sp.IMPACT_SEVERITY[item.impact],
        state="closed" if closed else "open",
        created_by=actor,
        created_at=now,
        updated_at=now,
        closed_at=now if closed else None,
        kind=item.kind,
        progress=item.progress,
        components=item.components,
        scheduled_for=item.scheduled_for,
        scheduled_until=item.scheduled_until,
    )
    session.add(notice)
    session.flush()
    add_update(session, notice, progress=item.progress, body=item.body, actor=actor, now=now)
    _audit(session, "status.incident_opened", actor, notice, item)
    return notice


def post_update(
    session: Session, page: sp.Page, *, notice_id: int, item: Draft, actor: str, now: dt.datetime
) -> Notice:
    """A new entry on an open incident's timeline; ``resolved``/``completed`` closes it. Components may change."""
    notice = session.scalars(select(Notice).where(Notice.id == notice_id).with_for_update()).one_or_none()
    if notice is None:
        raise NotFound(f"no incident {notice_id}")
    if notice.state != "open":
        raise Conflict(f"incident {notice_id} is resolved; open a new one")
    try:
        if item.kind != (notice.kind or "incident"):
            raise ValueError(
                f"#{notice_id} is a{'n incident' if notice.kind != 'maintenance' else ' maintenance window'}"
            )
        sp.valid_progress(notice.kind or "incident", item.progress)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    if item.components:
        notice.components = item.components
    if item.kind == "incident" and item.impact in sp.IMPACTS:
        notice.severity = sp.IMPACT_SEVERITY[item.impact]
    notice.updated_at = now
    if item.progress in sp.CLOSED_PROGRESS:
        notice.state, notice.closed_at, notice.resolution = "closed", now, item.body
    add_update(session, notice, progress=item.progress, body=item.body, actor=actor, now=now)
    _audit(session, "status.incident_updated", actor, notice, item)
    return notice


def _audit(session: Session, action: str, actor: str, notice: Notice, item: Draft) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        target_type="notice",
        target_id=notice.id,
        incident_id=notice.incident_id,
        details={
            "title": notice.title[:120],
            "kind": notice.kind,
            "status": item.progress,
            "components": sorted(item.components)[:50],
            "body_sha256": hashlib.sha256(item.body.encode()).hexdigest(),
        },
    )
