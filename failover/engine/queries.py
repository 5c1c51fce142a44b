"""Read models for the console and the API: plain dicts, no ORM objects leaking out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from failover.errors import NotFound
from failover.models import Activation, Delivery, DeliveryStatus, Incident, IncidentState, OutboxMessage
from failover.privacy import mask_address

PROGRESS_KEYS = ("pending", "sending", "in_doubt", "sent", "delivered", "failed", "skipped", "cancelled")


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def activation_summary(activation: Activation, counts: dict[str, int]) -> dict[str, Any]:
    progress = {key: counts.get(key, 0) for key in PROGRESS_KEYS}
    total = sum(progress.values())
    open_ = progress["pending"] + progress["sending"] + progress["in_doubt"]
    return {
        "id": activation.id,
        "incident_id": activation.incident_id,
        "runbook": activation.runbook_id,
        "phase": activation.phase,
        "state": activation.state,
        "reason": activation.reason,
        "message": activation.message,
        "requested_by": activation.requested_by,
        "approved_by": activation.approved_by,
        "drill": activation.drill,
        "created_at": iso(activation.created_at),
        "completed_at": iso(activation.completed_at),
        "progress": progress,
        "total": total,
        "done": total > 0 and open_ == 0,
    }


def status_counts(session: Session, activation_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {activation_id: {} for activation_id in activation_ids}
    if not activation_ids:
        return counts
    for activation_id, status, count in session.execute(
        select(Delivery.activation_id, Delivery.status, func.count())
        # Pages to approvers (engine.approvals) are messages about the activation, not of it.
        .where(Delivery.activation_id.in_(activation_ids), Delivery.step.not_like("approval.%"))
        .group_by(Delivery.activation_id, Delivery.status)
    ):
        counts[activation_id][status] = count
    return counts


def activation_progress(session: Session, activation_id: int) -> dict[str, Any]:
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    return activation_summary(activation, status_counts(session, [activation_id])[activation_id])


def activation_detail(session: Session, activation_id: int) -> dict[str, Any]:
    """An activation's progress and every failed row (all of them: a list cut short would hide who failed)."""
    summary = activation_progress(session, activation_id)
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.activation_id == activation_id, Delivery.status == DeliveryStatus.FAILED)
        .order_by(Delivery.id)
    )
    summary["failures"] = [delivery_row(row) for row in rows]
    activation = session.get(Activation, activation_id)
    assert activation is not None
    summary["summary"] = activation.summary
    return summary


def delivery_row(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "step": row.step,
        "person": row.person_id,
        "channel": row.channel,
        "to": mask_address(row.address),
        "status": row.status,
        "attempts": row.attempts,
        "transport": row.transport,
        "provider_id": row.provider_id,
        "error_code": row.error_code,
        "error": row.last_error,
        "provider_status": row.provider_status,
        "delivered_at": iso(row.delivered_at),
        "sent_at": iso(row.sent_at),
        "updated_at": iso(row.updated_at),
    }


def recent_activations(session: Session, *, limit: int = 20) -> list[dict[str, Any]]:
    activations = list(session.scalars(select(Activation).order_by(Activation.id.desc()).limit(limit)))
    counts = status_counts(session, [a.id for a in activations])
    return [activation_summary(a, counts[a.id]) for a in activations]


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "services": list(incident.services or []),
        "state": incident.state,
        "source": incident.source,
        "drill": incident.drill,
        "ms_issue_ids": list(incident.ms_issue_ids or []),
        "impact": incident.impact,
        "opened_by": incident.opened_by,
        "opened_at": iso(incident.opened_at),
        "resolved_at": iso(incident.resolved_at),
        "resolved_by": incident.resolved_by,
    }


def incidents(
    session: Session, *, open_only: bool = False, state: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if open_only:
        query = query.where(Incident.state == IncidentState.CONFIRMED)
    if state is not None:
        query = query.where(Incident.state == state)
    return [incident_json(i) for i in session.scalars(query)]


def incident_detail(session: Session, incident_id: int) -> dict[str, Any]:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    data = incident_json(incident)
    counts = status_counts(session, [a.id for a in incident.activations])
    data["activations"] = [activation_summary(a, counts[a.id]) for a in incident.activations]
    return data


def outbox(session: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OutboxMessage, Delivery.person_id, Delivery.activation_id)
        .join(Delivery, Delivery.id == OutboxMessage.delivery_id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": message.id,
            "delivery_id": message.delivery_id,
            "activation_id": activation_id,
            "person": person,
            "channel": message.channel,
            "to": mask_address(message.to),
            "subject": message.subject,
            "body": message.body,
            "created_at": iso(message.created_at),
        }
        for message, person, activation_id in rows
    ]
