"""Approvers are paged by SMS when an activation waits for a second operator.

Where an operator's phone lives: in ``config/contacts.yaml``, like everyone
else's. A console account is linked to one contact (``users.contact_id``,
``failover user contact NAME PERSON``), so a number changed there (or by the
people sync) is the number paged, and there is one place to keep it.

Beat's follow-up sweep calls ``page_waiting``: each operator or admin whose
account is enabled and linked to a contact with a phone gets one SMS per
waiting activation, except whoever requested it. The page is a ledger row of
the waiting activation (step ``approval.0``), so it is rate-limited, sent
once (the ledger's unique key), receipted and audited like every message; it
is not part of the activation's own counts. An approver linked later is paged
by the next sweep.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain.planning import Plan, PlannedDelivery, SkippedRecipient
from failover.domain.runbooks import Catalog
from failover.engine import audit, optouts
from failover.engine.ledger import write_ledger  # one ledger writer for every row
from failover.models import Activation, ActivationState, Delivery, User

STEP = "approval.0"
APPROVER_ROLES = ("operator", "admin")
ACTOR = "approvals"


def approvers(session: Session) -> list[tuple[str, str]]:
    """(username, contact id) of every enabled operator and admin linked to a contact."""
    return [
        (username, contact_id)
        for username, contact_id in session.execute(
            select(User.username, User.contact_id)
            .where(User.role.in_(APPROVER_ROLES), User.disabled.is_(False), User.contact_id.is_not(None))
            .order_by(User.username)
        )
        if contact_id
    ]


def page_waiting(session: Session, catalog: Catalog, *, now: dt.datetime, console_url: str) -> list[int]:
    """Page the approvers of every waiting activation not paged yet; returns the batches to publish."""
    waiting = list(
        session.scalars(
            select(Activation).where(Activation.state == ActivationState.PENDING_APPROVAL).order_by(Activation.id)
        )
    )
    if not waiting:
        return []
    linked = approvers(session)
    if not linked:
        return []
    opted_out: set[str] | None = None
    batch_ids: list[int] = []
    for activation in waiting:
        done = set(
            session.scalars(
                select(Delivery.person_id).where(Delivery.activation_id == activation.id, Delivery.step == STEP)
            )
        )
        due = {
            contact_id: username
            for username, contact_id in linked
            if username != activation.requested_by and contact_id not in done
        }
        if not due:
            continue
        if opted_out is None:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
        plan = Plan(activation.runbook_id, "approval")
        text = _text(catalog, activation, console_url)
        for contact_id in due:
            person = catalog.contacts.person(contact_id)
            reason = (
                "no such contact"
                if person is None
                else "no phone number"
                if not person.phone
                else "opted out of SMS (replied STOP)"
                if contact_id in opted_out
                else None
            )
            if reason is not None or person is None or person.phone is None:
                plan.skipped.append(SkippedRecipient(STEP, contact_id, "sms", reason or "no phone number"))
                continue
            plan.deliveries.append(PlannedDelivery(STEP, contact_id, "sms", person.phone, None, text))
        batch_ids += write_ledger(session, activation.id, plan, now)
        audit.record(
            session,
            action="approval.paged",
            actor=ACTOR,
            target_type="activation",
            target_id=activation.id,
            incident_id=activation.incident_id,
            details={
                "approvers": sorted(due.values()),
                "paged": len(plan.deliveries),
                "skipped": [f"{s.person_id}: {s.reason}" for s in plan.skipped],
            },
        )
    return batch_ids


def _text(catalog: Catalog, activation: Activation, console_url: str) -> str:
    runbook = catalog.runbook(activation.runbook_id)
    title = runbook.title if runbook else activation.runbook_id
    drill = "[DRILL] " if activation.drill else ""
    url = f"{console_url.rstrip('/')}/activations/{activation.id}"
    return f"{drill}failover: '{title}' waits for your approval (asked by {activation.requested_by}). Review it: {url}"
