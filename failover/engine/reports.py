"""After-action reports read from the ledger: one activation's rows in, a ``domain.reports.Report`` out.

Only person ids, group names, channels and error texts are read into the
report (error texts come from providers and never carry an address); bodies
are read for SMS only, to count their segments for the cost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain import reports
from failover.domain.preview import Prices
from failover.domain.runbooks import Catalog
from failover.engine import microsoft_lag
from failover.engine.queries import iso
from failover.errors import NotFound
from failover.models import Activation, Answer, Delivery, EscalationTimer

DRILLS_COMPARED = 24


def report(session: Session, activation_id: int, catalog: Catalog | None, prices: Prices) -> reports.Report:
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    return _report(session, activation, catalog, prices)


def _report(session: Session, activation: Activation, catalog: Catalog | None, prices: Prices) -> reports.Report:
    rows = [
        reports.LedgerRow(
            person_id=person_id,
            step=step,
            channel=channel,
            status=status,
            transport=transport,
            error_code=error_code,
            last_error=last_error,
            sent_at=sent_at,
            body=body if channel == "sms" else "",
        )
        for person_id, step, channel, status, transport, error_code, last_error, sent_at, body in session.execute(
            select(
                Delivery.person_id,
                Delivery.step,
                Delivery.channel,
                Delivery.status,
                Delivery.transport,
                Delivery.error_code,
                Delivery.last_error,
                Delivery.sent_at,
                Delivery.body,
            ).where(Delivery.activation_id == activation.id)
        )
    ]
    answers = [
        reports.AnswerRow(person_id, answer, first_at)
        for person_id, answer, first_at in session.execute(
            select(Answer.person_id, Answer.answer, Answer.first_at).where(Answer.activation_id == activation.id)
        )
    ]
    timers = [
        reports.EscalationRow(
            t.entry, t.condition, t.channel, t.due_at, t.fired_at, t.outcome, t.paged or 0, t.limited or 0
        )
        for t in session.scalars(
            select(EscalationTimer)
            .where(EscalationTimer.activation_id == activation.id)
            .order_by(EscalationTimer.entry)
        )
    ]
    contacts = catalog.contacts if catalog else None
    groups_of: dict[str, tuple[str, ...]] = {}
    for person_id in {row.person_id for row in rows} | {a.person_id for a in answers}:
        person = contacts.person(person_id) if contacts else None
        groups_of[person_id] = person.groups if person else ()
    return reports.build(
        started_at=activation.accepted_at or activation.created_at,
        rows=rows,
        answers=answers,
        groups_of=groups_of,
        prices=prices,
        escalations=timers,
    )


def header(session: Session, activation_id: int, catalog: Catalog | None) -> dict[str, Any]:
    """What the report says about the activation itself (no recipient data)."""
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    runbook = catalog.runbook(activation.runbook_id) if catalog else None
    incident = activation.incident
    return {
        "id": activation.id,
        "incident_id": activation.incident_id,
        "incident_title": incident.title,
        "runbook": activation.runbook_id,
        "runbook_title": runbook.title if runbook else activation.runbook_id,
        "phase": activation.phase,
        "state": activation.state,
        "drill": activation.drill,
        "requested_by": activation.requested_by,
        "approved_by": activation.approved_by,
        "created_at": iso(activation.created_at),
        "accepted_at": iso(activation.accepted_at),
        "completed_at": iso(activation.completed_at),
        "resolved_at": iso(incident.resolved_at),
        # How long before Microsoft said so did we know: for real incidents only (a drill has no Microsoft side).
        "lag": None if activation.drill or incident.drill else microsoft_lag.report(session, incident.id, utcnow()),
    }


def drill_history(
    session: Session, catalog: Catalog | None, prices: Prices, *, limit: int = DRILLS_COMPARED
) -> list[reports.DrillPoint]:
    """The latest drills' reach and acknowledgement rates, oldest first (accepted drills of the steps phase)."""
    drills = list(
        session.scalars(
            select(Activation)
            .where(Activation.drill.is_(True), Activation.phase == "steps", Activation.accepted_at.is_not(None))
            .order_by(Activation.accepted_at.desc(), Activation.id.desc())
            .limit(limit)
        )
    )
    return reports.compare((a.id, a.runbook_id, _report(session, a, catalog, prices)) for a in drills)
