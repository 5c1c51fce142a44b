"""Escalation: runbook ``escalation`` entries as due times in the database, fired at most once by the sweep.

When an activation is accepted, each entry becomes an ``EscalationTimer`` due
``after`` its acceptance (``engine.timers``). Beat's follow-up sweep fires due timers: the timer
row is locked and stamped ``fired_at`` in the same transaction that writes the
escalation's ledger rows, so a timer fires once even with two sweeps running,
and a worker, broker or beat restart only delays it. Who is paged is decided
by ``domain.reach.escalation_targets``; nobody is paged more than
``FAILOVER_ESCALATION_LIMIT`` times during one incident.

Operators steer an activation's escalation (``steer``): *paused*, none of its
timers fires (one that fell due meanwhile fires at the first sweep after
*resume*); *cancelled*, every timer not fired yet is closed and never fires.
Each change is audited with who made it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain import planning, reach
from failover.domain.planning import SkippedRecipient
from failover.domain.runbooks import Catalog
from failover.engine import audit, optouts, roster
from failover.engine.activation import activation_info, incident_info
from failover.engine.ledger import write_ledger  # one ledger writer for every row
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import Activation, ActivationState, EscalationState, EscalationTimer, IncidentState

ACTOR = "escalation"


def fire_due(session: Session, catalog: Catalog, *, now: dt.datetime, limit: int, max_timers: int = 50) -> list[int]:
    """Fire every due timer once; returns the dispatch batches to publish after commit."""
    timers = session.scalars(
        select(EscalationTimer)
        .join(Activation, Activation.id == EscalationTimer.activation_id)
        .where(
            EscalationTimer.fired_at.is_(None),
            EscalationTimer.due_at <= now,
            Activation.escalation == EscalationState.ACTIVE,  # paused ones wait for "resume"
        )
        .order_by(EscalationTimer.due_at, EscalationTimer.id)
        .limit(max_timers)
        .with_for_update(skip_locked=True, of=EscalationTimer)
    ).all()
    batch_ids: list[int] = []
    opted_out: set[str] | None = None
    for timer in timers:
        timer.fired_at = now
        activation = session.get_one(Activation, timer.activation_id)
        details: dict[str, object] = {"entry": timer.entry, "if": timer.condition, "channel": timer.channel}
        reason = _stale(activation)
        runbook = catalog.runbook(activation.runbook_id)
        entry = runbook.escalation[timer.entry] if runbook and timer.entry < len(runbook.escalation) else None
        if reason is None and (runbook is None or entry is None):
            reason = "the runbook no longer has this escalation entry"
        if reason is not None or runbook is None or entry is None:
            timer.outcome = "cancelled"
            _audit(session, "escalation.cancelled", activation, {**details, "reason": reason})
            continue
        states = roster.states(session, activation.id, incident_id=activation.incident_id)
        recipients = [person.id for person in planning.expand(catalog, entry.to)]
        targets = reach.escalation_targets(recipients, states, entry.if_, limit=limit)
        if not targets.page and not targets.limited:
            timer.outcome = "nobody"
            _audit(session, "escalation.not_needed", activation, details)
            continue
        if opted_out is None:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
        info = activation_info(activation, actor=ACTOR)
        try:
            plan = planning.plan(
                catalog,
                runbook,
                phase="escalation",
                incident=incident_info(activation.incident),
                activation=info,
                opted_out=opted_out,
                steps=[(timer.entry, entry)],
            )
        except InvalidRequest as exc:
            timer.outcome = "error"
            _audit(session, "escalation.failed", activation, {**details, "error": str(exc)})
            continue
        paged = set(targets.page)
        plan.deliveries = [d for d in plan.deliveries if d.person_id in paged]
        plan.skipped = [s for s in plan.skipped if s.person_id in paged]
        key = f"escalation.{timer.entry}"
        reason_text = f"escalation limit reached ({limit} per person per incident)"
        plan.skipped += [SkippedRecipient(key, person_id, entry.channel, reason_text) for person_id in targets.limited]
        batch_ids += write_ledger(session, activation.id, plan, now)
        if plan.deliveries and activation.state == ActivationState.COMPLETED:
            activation.state, activation.completed_at = ActivationState.QUEUED, None
        timer.outcome = "paged" if plan.deliveries else "nobody"
        timer.paged, timer.limited = len(plan.deliveries), len(targets.limited)
        _audit(
            session,
            "escalation.fired",
            activation,
            {
                **details,
                "paged": len(plan.deliveries),
                "limited": len(targets.limited),
                "skipped": len(plan.skipped) - len(targets.limited),
            },
        )
    return batch_ids


STEERING = {
    # action: (states it may start from, state it leaves)
    "pause": ((EscalationState.ACTIVE,), EscalationState.PAUSED),
    "resume": ((EscalationState.PAUSED,), EscalationState.ACTIVE),
    "cancel": ((EscalationState.ACTIVE, EscalationState.PAUSED), EscalationState.CANCELLED),
}


def steer(session: Session, *, activation_id: int, action: str, actor: str, now: dt.datetime, note: str = "") -> str:
    """Pause, resume or cancel one activation's escalation; returns its new state."""
    if action not in STEERING:
        raise InvalidRequest(f"unknown escalation action '{action}'; use pause, resume or cancel")
    activation = session.scalars(
        select(Activation).where(Activation.id == activation_id).with_for_update()
    ).one_or_none()
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    allowed, target = STEERING[action]
    if activation.escalation not in allowed:
        raise Conflict(f"the escalation of activation {activation_id} is {activation.escalation}; it cannot {action}")
    activation.escalation = target
    details: dict[str, object] = {"note": note} if note else {}
    if target == EscalationState.CANCELLED:
        waiting = session.scalars(
            select(EscalationTimer)
            .where(EscalationTimer.activation_id == activation_id, EscalationTimer.fired_at.is_(None))
            .order_by(EscalationTimer.entry)
            .with_for_update()
        ).all()
        for timer in waiting:
            timer.fired_at, timer.outcome = now, "cancelled"
        details["entries"] = [timer.entry for timer in waiting]
    audit.record(
        session,
        action=f"escalation.{'cancelled' if action == 'cancel' else action + 'd'}",
        actor=actor,
        target_type="activation",
        target_id=activation.id,
        incident_id=activation.incident_id,
        details=details,
    )
    return target


def controls(session: Session, activation_id: int) -> dict[str, object]:
    """The activation page's escalation controls: its state and how many timers are still to fire."""
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    timers = session.scalars(select(EscalationTimer).where(EscalationTimer.activation_id == activation_id)).all()
    waiting = [t for t in timers if t.fired_at is None]
    return {
        "activation_id": activation_id,
        "state": activation.escalation,
        "timers": len(timers),
        "waiting": len(waiting),
        "next_due_at": min((t.due_at for t in waiting), default=None),
        "open": activation.phase == "steps" and activation.incident.state == IncidentState.CONFIRMED,
    }


def _stale(activation: Activation) -> str | None:
    if activation.incident.state != IncidentState.CONFIRMED:
        return "the incident is resolved"
    if activation.state not in (ActivationState.QUEUED, ActivationState.COMPLETED):
        return f"the activation is {activation.state}"
    return None


def _audit(session: Session, action: str, activation: Activation, details: dict[str, object]) -> None:
    audit.record(
        session,
        action=action,
        actor=ACTOR,
        target_type="activation",
        target_id=activation.id,
        incident_id=activation.incident_id,
        details=details,
    )
