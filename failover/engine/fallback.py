"""Receipt-driven fallback: a person whose message failed for good moves at once to the step's next channel.

A step's ``fallback:`` list (``[voice, email]``) is its chain after its own
channel. When a row ends ``failed`` - refused by the provider, out of retries,
or reported undelivered / bounced / dropped by a receipt - the person gets the
same step over the next channel of the chain they have not been tried on,
unless they already answered or were reached on another channel of that step.
The new row has the step's key, so the ledger's unique key makes it happen at
most once. Each failed row is considered once (``followed_up_at``): right in
the receipt's transaction, or by the follow-up sweep for failures the
dispatcher recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from failover.domain import planning, reach
from failover.domain.planning import Plan
from failover.domain.runbooks import Catalog, Runbook, Step
from failover.engine import audit, optouts
from failover.engine.activation import activation_info, incident_info
from failover.engine.ledger import write_ledger  # one ledger writer for every row
from failover.errors import InvalidRequest
from failover.models import (
    Activation,
    ActivationState,
    Answer,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentState,
)

log = logging.getLogger(__name__)

TWILIO_UNSUBSCRIBED = "21610"  # Twilio refuses: the recipient replied STOP to our number
CIRCUIT_OPEN = "circuit_open"  # failover.throttle.CircuitOpen's code


@dataclass
class _Open:
    activation: Activation
    incident: Incident
    runbook: Runbook
    plan: Plan


def fall_back(
    session: Session,
    catalog: Catalog,
    *,
    now: dt.datetime,
    delivery_ids: Collection[int] | None = None,
    limit: int = 500,
    actor: str = "fallback",
) -> list[int]:
    """Plan the next channel for failed rows not yet followed up; returns the new dispatch batches."""
    failed = Delivery.status == DeliveryStatus.FAILED
    # A row waiting for a provider whose circuit is open is handed to its fallback channel at once.
    waiting_on_open_circuit = and_(Delivery.status == DeliveryStatus.PENDING, Delivery.error_code == CIRCUIT_OPEN)
    query = select(Delivery).where(or_(failed, waiting_on_open_circuit), Delivery.followed_up_at.is_(None))
    if delivery_ids is not None:
        query = query.where(Delivery.id.in_(list(delivery_ids)))
    rows = session.scalars(query.order_by(Delivery.id).limit(limit).with_for_update(skip_locked=True)).all()
    if not rows:
        return []
    opened: dict[int, _Open | None] = {}
    tried: dict[tuple[int, str, str], set[str]] = {}
    opted_out: set[str] | None = None
    events: list[audit.Entry] = []
    for row in rows:
        if row.status == DeliveryStatus.PENDING:
            if not _has_fallback(session, catalog, row, opened):
                continue  # nothing to fall back to: it waits for the circuit to close
            row.status, row.updated_at = DeliveryStatus.FAILED, now
            row.last_error = "provider down (circuit open): the fallback channel takes over"
        row.followed_up_at = now
        if row.channel == "sms" and row.error_code == TWILIO_UNSUBSCRIBED:
            optouts.opt_out(
                session, phone=row.address, person_id=row.person_id, keyword=TWILIO_UNSUBSCRIBED, now=now, actor=actor
            )
            opted_out = None  # read again: this person just joined it
        if row.activation_id not in opened:
            opened[row.activation_id] = _open(session, catalog, row.activation_id)
        context = opened[row.activation_id]
        step = context.runbook.step_at(row.step) if context else None
        if context is None or step is None or len(step.chain) < 2 or row.channel not in step.chain:
            continue
        key = (row.activation_id, row.step, row.person_id)
        if key not in tried:
            tried[key] = _tried(session, row)
        if _settled(session, row):
            continue
        if opted_out is None:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
        event = _next(catalog, context, step, row, tried[key], opted_out)
        if event is not None:
            events.append(event)
    batch_ids: list[int] = []
    for context in opened.values():
        if context is None or not (context.plan.deliveries or context.plan.skipped):
            continue
        batch_ids += write_ledger(session, context.activation.id, context.plan, now)
        if context.plan.deliveries and context.activation.state == ActivationState.COMPLETED:
            context.activation.state, context.activation.completed_at = ActivationState.QUEUED, None
    audit.record_many(session, events)
    return batch_ids


def _next(
    catalog: Catalog, context: _Open, step: Step, row: Delivery, tried: set[str], opted_out: set[str]
) -> audit.Entry | None:
    """Plan the first channel of the chain that can reach the person; skipped channels count as tried."""
    phase, _, index = row.step.partition(".")
    activation = context.activation
    info = activation_info(activation, actor="fallback")
    details: dict[str, object] = {"from": row.channel, "code": row.error_code, "step": row.step}
    for channel in reach.next_channels(step.chain, row.channel, tried):
        tried.add(channel)
        only_them = step.fallback_step(channel).model_copy(update={"to": (f"person:{row.person_id}",)})
        try:
            plan = planning.plan(
                catalog,
                context.runbook,
                phase=phase,
                incident=incident_info(context.incident),
                activation=info,
                override=activation.override if phase != "escalation" else None,
                opted_out=opted_out,
                steps=[(int(index), only_them)],
            )
        except InvalidRequest as exc:
            return _entry("fallback.failed", row, {**details, "to": channel, "error": str(exc)})
        context.plan.skipped.extend(plan.skipped)
        if plan.deliveries:
            context.plan.deliveries.extend(plan.deliveries)
            return _entry("fallback.queued", row, {**details, "to": channel})
    return _entry("fallback.exhausted", row, details)


def _has_fallback(session: Session, catalog: Catalog, row: Delivery, opened: dict[int, _Open | None]) -> bool:
    if row.activation_id not in opened:
        opened[row.activation_id] = _open(session, catalog, row.activation_id)
    context = opened[row.activation_id]
    step = context.runbook.step_at(row.step) if context else None
    return step is not None and row.channel in step.chain and step.chain.index(row.channel) < len(step.chain) - 1


def _entry(action: str, row: Delivery, details: dict[str, object]) -> audit.Entry:
    return audit.Entry(action, "fallback", "delivery", row.id, details={"person": row.person_id, **details})


def _open(session: Session, catalog: Catalog, activation_id: int) -> _Open | None:
    """The activation if a fallback still makes sense for it: its incident is open and its runbook known."""
    activation = session.get(Activation, activation_id)
    if activation is None or activation.state not in (ActivationState.QUEUED, ActivationState.COMPLETED):
        return None
    incident = activation.incident
    runbook = catalog.runbook(activation.runbook_id)
    if runbook is None or (incident.state != IncidentState.CONFIRMED and activation.phase != "on_resolve"):
        return None
    return _Open(activation, incident, runbook, Plan(runbook.id, activation.phase))


def _tried(session: Session, row: Delivery) -> set[str]:
    return set(
        session.scalars(
            select(Delivery.channel).where(
                Delivery.activation_id == row.activation_id,
                Delivery.step == row.step,
                Delivery.person_id == row.person_id,
            )
        )
    )


def _settled(session: Session, row: Delivery) -> bool:
    """They answered, or another channel of this step reached them: nothing more to try."""
    answered = session.scalar(
        select(Answer.id).where(Answer.activation_id == row.activation_id, Answer.person_id == row.person_id)
    )
    delivered = session.scalar(
        select(Delivery.id)
        .where(
            Delivery.activation_id == row.activation_id,
            Delivery.step == row.step,
            Delivery.person_id == row.person_id,
            Delivery.status == DeliveryStatus.DELIVERED,
        )
        .limit(1)
    )
    return answered is not None or delivered is not None
