"""Microsoft's lag for one incident, from what detection already keeps (signals, service issues).

``for_incident`` is what the incident page and the after-action report call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain.microsoft_lag import Lag
from failover.models import Incident, ServiceIssue, Signal

FAILING = ("failing",)


def for_incident(session: Session, incident_id: int) -> Lag | None:
    """The four moments of one incident (None: no such incident)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    first = session.execute(
        select(Signal.at, Signal.voter)
        .where(Signal.incident_id == incident_id, Signal.status.in_(FAILING) | Signal.ms_issue_id.is_not(None))
        .order_by(Signal.at, Signal.id)
        .limit(1)
    ).first()
    ids = list(incident.ms_issue_ids or [])
    listed = None
    if ids:
        listed = session.execute(
            select(ServiceIssue.id, ServiceIssue.first_seen_at, ServiceIssue.started_at)
            .where(ServiceIssue.id.in_(ids))
            .order_by(ServiceIssue.first_seen_at)
            .limit(1)
        ).first()
    return Lag(
        confirmed_at=incident.opened_at,
        first_evidence_at=min(first[0], incident.opened_at) if first else None,
        first_evidence_source=first[1] if first else None,
        graph_listed_at=listed[1] if listed else None,
        ms_issue_id=listed[0] if listed else None,
        ms_started_at=listed[2] if listed else None,
    )


def report(session: Session, incident_id: int, now: dt.datetime) -> dict[str, Any] | None:
    """Plain numbers for pages and the after-action report (issue 16)."""
    lag = for_incident(session, incident_id)
    return lag.as_dict(now) if lag is not None else None
