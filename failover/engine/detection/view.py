"""Read model of the watcher for the dashboard and the CLI: plain dicts, no ORM objects leaking out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain import staff_reports
from failover.domain.detection.config import DetectionConfig, fold
from failover.engine import microsoft_lag
from failover.engine.queries import iso
from failover.engine.staff_reports import recent_reports
from failover.models import DetectionVote, Incident, ServiceIssue, Signal, WatchedService, WatchHead


def overview(session: Session, config: DetectionConfig, now: dt.datetime, *, signals: int = 15) -> dict[str, Any]:
    """Each watched service's state and evidence, Graph's condition, and the latest signals."""
    head = session.get(WatchHead, 1)
    rows = {fold(row.service): row for row in session.scalars(select(WatchedService))}
    votes: dict[str, list[DetectionVote]] = {}
    for vote in session.scalars(select(DetectionVote).order_by(DetectionVote.voter)):
        votes.setdefault(fold(vote.service), []).append(vote)
    issues: dict[str, list[ServiceIssue]] = {}
    for issue in session.scalars(
        select(ServiceIssue).where(ServiceIssue.current.is_(True), ServiceIssue.is_resolved.is_(False))
    ):
        issues.setdefault(fold(issue.service), []).append(issue)
    reports = _reports(session, config, now)
    services = []
    for name in config.watch:
        row = rows.get(fold(name))
        services.append(
            {
                "service": name,
                "phase": row.phase if row else "operational",
                "since": iso(row.since) if row else None,
                "reason": row.reason if row else "",
                "incident_id": row.incident_id if row else None,
                "manual": bool(row and row.manual),
                "muted": bool(row and (row.extra or {}).get("muted")),
                "throttled": bool(row and (row.extra or {}).get("throttled")),
                "graph_status": row.graph_status if row else None,
                "votes": [_vote(v, now) for v in votes.get(fold(name), [])],
                "issues": [_issue(i) for i in issues.get(fold(name), [])],
                "reports": reports.get(name),
            }
        )
    recent = session.scalars(select(Signal).order_by(Signal.id.desc()).limit(signals))
    return {
        "services": services,
        "graph": {
            "state": head.graph_state if head else None,
            "detail": head.graph_detail if head else None,
            "checked_at": iso(head.graph_checked_at) if head else None,
            "ok_at": iso(head.graph_ok_at) if head else None,
            "backoff_until": iso(head.graph_backoff_until) if head else None,
        },
        "probes": [{"name": p.key, "kind": p.kind, "target": p.target, "enabled": p.enabled} for p in config.probes],
        "signals": [signal_json(s) for s in recent],
    }


def incident_evidence(session: Session, incident_id: int, *, limit: int = 100) -> dict[str, Any]:
    """What Microsoft said about an incident's issues, and the signals linked to it."""
    incident = session.get(Incident, incident_id)
    ids = list(incident.ms_issue_ids or []) if incident is not None else []
    issues: Iterable[ServiceIssue] = (
        session.scalars(select(ServiceIssue).where(ServiceIssue.id.in_(ids))) if ids else []
    )
    rows = session.scalars(
        select(Signal).where(Signal.incident_id == incident_id).order_by(Signal.id.desc()).limit(limit)
    )
    return {
        "issues": [_issue(i) for i in issues],
        "signals": [signal_json(s) for s in rows],
        "lag": microsoft_lag.report(session, incident_id, utcnow()),
    }


REPORT_BUCKETS = 6  # the dashboard's sparkline: six windows back


def _reports(session: Session, config: DetectionConfig, now: dt.datetime) -> dict[str, dict[str, Any]]:
    """Staff reports per service: distinct reporters in the window now, and in each of the windows before."""
    policy = config.reports
    if policy is None or not policy.enabled:
        return {}
    recent = recent_reports(session, now, policy.window * REPORT_BUCKETS)
    counts = staff_reports.buckets(recent, config.watch, now, width=policy.window, count=REPORT_BUCKETS)
    return {
        service: {"now": series[-1], "series": series, "min_reporters": policy.min_reporters}
        for service, series in counts.items()
    }


def signal_json(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.id,
        "at": iso(signal.at),
        "kind": signal.kind,
        "origin": signal.origin,
        "voter": signal.voter,
        "service": signal.service,
        "status": signal.status,
        "summary": signal.summary,
        "ms_issue_id": signal.ms_issue_id,
        "incident_id": signal.incident_id,
    }


def _vote(vote: DetectionVote, now: dt.datetime) -> dict[str, Any]:
    live = vote.expires_at is None or now < vote.expires_at
    return {
        "voter": vote.voter,
        "origin": vote.origin,
        "failing": vote.failing,
        "live": live,
        "since": iso(vote.since),
        "seen_at": iso(vote.seen_at),
        "summary": vote.summary,
    }


def _issue(issue: ServiceIssue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "service": issue.service,
        "title": issue.title,
        "status": issue.status,
        "is_resolved": issue.is_resolved,
        "classification": issue.classification,
        "impact": issue.impact,
        "latest_post": issue.latest_post,
        "started_at": iso(issue.started_at),
        "last_modified_at": iso(issue.last_modified_at),
    }
