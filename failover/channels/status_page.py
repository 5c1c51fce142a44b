"""The fallback status page as a channel: a step becomes a notice anyone can read.

An all-clear (a runbook's ``on_resolve`` status step) does not post a second
card beside the outage notice: it is written onto the incident's notices as
their resolution - those its own runbook posted, else every unresolved one
of the incident - and they stay closed, so the page shows one card per
notice, marked resolved. Only an incident that had no notice at all gets a
new one, posted closed.

Each notice is a public incident (engine/statuspage.py): posting opens its
timeline with an "investigating" update touching the incident's services, the
all-clear adds a "resolved" one, and both move the page's revision so the
static snapshot is published again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from failover.channels.base import OutgoingMessage, Receipt
from failover.clock import utcnow
from failover.db import Database
from failover.models import Activation, Delivery, Incident, Notice
from failover.statusrows import add_update

# A runbook notice's severity as the state it gives the incident's services (domain.statuspage.IMPACT_STATE).
SEVERITY_STATE = {"info": "operational", "minor": "degraded_performance", "major": "partial_outage"}

ALL_CLEAR_STEPS = "on_resolve."


class StatusPageChannel:
    name = "status"
    transport = "status"
    max_batch = 50

    def __init__(self, database: Database) -> None:
        self.database = database

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        receipts = []
        with self.database.transaction() as session:
            for message in messages:
                # Idempotent: a retried batch finds the notice it posted or resolved.
                notice = _found(session, message.delivery_id)
                if notice is None and (message.step or "").startswith(ALL_CLEAR_STEPS):
                    notice = _resolve(session, message)
                if notice is None:
                    notice = _post(session, message, state="open")
                receipts.append(Receipt(message.delivery_id, f"notice-{notice.id}"))
        return receipts

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        with self.database.reading() as session:
            found = _found(session, message.delivery_id)
        return Receipt(message.delivery_id, f"notice-{found.id}") if found is not None else None


def _found(session: Session, delivery_id: int) -> Notice | None:
    return session.scalars(
        select(Notice)
        .where(or_(Notice.delivery_id == delivery_id, Notice.resolved_by_delivery == delivery_id))
        .order_by(Notice.id)
        .limit(1)
    ).first()


def _resolve(session: Session, message: OutgoingMessage) -> Notice:
    """Write the all-clear onto the incident's notices (closing any still open); returns the first."""
    now = utcnow()
    unresolved = select(Notice).where(Notice.incident_id == message.incident_id, Notice.resolution.is_(None))
    runbook = select(Activation.runbook_id).join(Delivery, Delivery.activation_id == Activation.id)
    own = session.scalars(
        unresolved.join(Delivery, Delivery.id == Notice.delivery_id)
        .join(Activation, Activation.id == Delivery.activation_id)
        .where(Activation.runbook_id == runbook.where(Delivery.id == message.delivery_id).scalar_subquery())
        .order_by(Notice.id)
    ).all()
    targets = own or session.scalars(unresolved.order_by(Notice.id)).all()
    if not targets or message.incident_id is None:
        return _post(session, message, state="closed")
    for notice in targets:
        notice.resolution, notice.resolved_by_delivery, notice.updated_at = message.body, message.delivery_id, now
        if notice.state == "open":
            notice.state, notice.closed_at = "closed", now
        add_update(session, notice, progress="resolved", body=message.body, actor="runbook", now=now)
    return targets[0]


def _post(session: Session, message: OutgoingMessage, *, state: str) -> Notice:
    now = utcnow()
    closed = state == "closed"
    notice = Notice(
        title=message.subject or "Notice",
        body=message.body,
        severity=message.severity or "major",
        state=state,
        incident_id=message.incident_id,
        delivery_id=message.delivery_id,
        created_by="runbook",
        created_at=now,
        updated_at=now,
        closed_at=now if closed else None,
        resolution=message.body if closed else None,
        resolved_by_delivery=message.delivery_id if closed else None,
    )
    incident = session.get(Incident, message.incident_id) if message.incident_id is not None else None
    state = SEVERITY_STATE.get(notice.severity, "major_outage")
    notice.components = {service: state for service in (incident.services if incident else [])}
    session.add(notice)
    session.flush()
    add_update(
        session, notice, progress="resolved" if closed else "investigating", body=notice.body, actor="runbook", now=now
    )
    return notice
