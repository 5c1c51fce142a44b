"""Incidents: resolving one sends the all-clear of every runbook it activated, once."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain.runbooks import Catalog
from failover.engine import audit
from failover.engine.activation import Accepted, cancel_pending
from failover.engine.activation import all_clear as queue_all_clear
from failover.errors import Conflict, NotFound
from failover.models import Incident, IncidentState, Notice


def resolve(
    session: Session,
    catalog: Catalog | None,
    *,
    incident_id: int,
    actor: str,
    note: str = "",
    opted_out: Collection[str] = (),
    all_clear: bool = True,
    override: str | None = None,
) -> list[Accepted]:
    """Close the incident and its status notices; queue the runbooks' ``on_resolve`` phases.

    Needs no configuration file: with ``catalog`` None (or a runbook that does not load) the
    incident is still resolved, its notices closed and its escalations stopped; only the
    all-clear that cannot be planned is left out, and audited as such. ``all_clear=False`` skips
    the all-clear on purpose; ``override`` replaces its SMS and email texts (as an activation's does).
    """
    incident = session.scalars(select(Incident).where(Incident.id == incident_id).with_for_update()).one_or_none()
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.state == IncidentState.RESOLVED:
        raise Conflict(f"incident {incident_id} is already resolved")
    now = utcnow()
    incident.state = IncidentState.RESOLVED
    incident.resolved_at = now
    incident.resolved_by = actor
    closed = 0
    for notice in session.scalars(select(Notice).where(Notice.incident_id == incident.id, Notice.state == "open")):
        notice.state, notice.closed_at, notice.updated_at = "closed", now, now
        closed += 1
    audit.record(
        session,
        action="incident.resolved",
        actor=actor,
        target_type="incident",
        target_id=incident.id,
        incident_id=incident.id,
        details={"note": note, "notices_closed": closed, "all_clear": _all_clear_choice(all_clear, override)},
    )
    if not all_clear:
        cancel_pending(session, incident=incident, actor=actor)
        return []
    return queue_all_clear(session, catalog, incident=incident, actor=actor, opted_out=opted_out, override=override)


def _all_clear_choice(send: bool, override: str | None) -> str:
    if not send:
        return "skipped"
    return "edited" if override and override.strip() else "as written"
