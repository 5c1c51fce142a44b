"""Who was reached and who answered, per activation: the state escalation decides on, and the roster people see.

``states`` reads one activation's ledger rows and answers into
``domain.reach.PersonState`` values. ``roster`` is the read model of the
activation page (counts by group of acknowledged / need help / no answer, and
one line per person); ``roster_csv`` exports it. Only person ids, names and
groups leave here - never a phone number or an address.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from failover.domain import reach
from failover.domain.receipts import reached
from failover.domain.runbooks import Catalog
from failover.engine.queries import iso
from failover.errors import NotFound
from failover.models import Activation, Answer, Delivery, DeliveryStatus, EscalationTimer

NOT_SENT = (DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)
ESCALATION_STEPS = "escalation.%"
APPROVAL_STEPS = "approval.%"  # pages to approvers (engine.approvals): not part of the broadcast


def is_aside(step: str) -> bool:
    """Escalations and approval pages: messages about the activation, not the steps it asked people with."""
    return step.startswith(("escalation.", "approval."))


def pages(session: Session, incident_id: int) -> dict[str, int]:
    """Escalation messages sent (or on their way) to each person during one incident."""
    return dict(
        session.execute(
            select(Delivery.person_id, func.count())
            .join(Activation, Activation.id == Delivery.activation_id)
            .where(
                Activation.incident_id == incident_id,
                Delivery.step.like(ESCALATION_STEPS),
                Delivery.status.not_in(NOT_SENT),
            )
            .group_by(Delivery.person_id)
        ).all()
    )


def states(session: Session, activation_id: int, *, incident_id: int | None = None) -> dict[str, reach.PersonState]:
    """Each person of one activation: named, asked, reached, failed, their answer, and (given the incident)
    escalations so far. One pass over the activation's rows (two small columns each), whatever its size."""
    asked: dict[str, bool] = defaultdict(bool)
    addressed: dict[str, bool] = defaultdict(bool)
    got_there: dict[str, bool] = defaultdict(bool)
    failed: dict[str, bool] = defaultdict(bool)
    for person_id, step, status, transport in session.execute(
        select(Delivery.person_id, Delivery.step, Delivery.status, Delivery.transport).where(
            Delivery.activation_id == activation_id,
            Delivery.channel != "status",
            Delivery.step.not_like(APPROVAL_STEPS),
        )
    ):
        own = not is_aside(step)
        addressed[person_id] |= own
        asked[person_id] |= own and status not in NOT_SENT
        got_there[person_id] |= reached(status, transport)
        failed[person_id] |= status == DeliveryStatus.FAILED
    answers = dict(
        session.execute(select(Answer.person_id, Answer.answer).where(Answer.activation_id == activation_id)).all()
    )
    counts = pages(session, incident_id) if incident_id is not None else {}
    people = list(dict.fromkeys([*asked, *answers]))
    return {
        person_id: reach.PersonState(
            person_id,
            asked=asked[person_id],
            reached=got_there[person_id],
            answer=answers.get(person_id),
            pages=counts.get(person_id, 0),
            addressed=addressed[person_id],
            failed=failed[person_id],
        )
        for person_id in people
    }


def roster(session: Session, activation_id: int, catalog: Catalog | None) -> dict[str, Any]:
    """The activation page's roster: counts by group and one line per person, as plain data.

    Names and groups come from ``catalog`` (people are shown by id without one).
    """
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    contacts = catalog.contacts if catalog else None
    runbook = catalog.runbook(activation.runbook_id) if catalog else None
    people = states(session, activation_id, incident_id=activation.incident_id)
    groups_of: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for person_id in people:
        person = contacts.person(person_id) if contacts else None
        groups_of[person_id] = person.groups if person else ()
        names[person_id] = person.name if person else person_id
    answers = {a.person_id: a for a in session.scalars(select(Answer).where(Answer.activation_id == activation_id))}
    channels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in session.scalars(
        select(Delivery)
        .where(
            Delivery.activation_id == activation_id,
            Delivery.channel != "status",
            Delivery.step.not_like(APPROVAL_STEPS),
        )
        .order_by(Delivery.id)
    ):
        channels[row.person_id].append(
            {
                "step": row.step,
                "channel": row.channel,
                "status": row.status,
                "provider_status": row.provider_status,
                "error_code": row.error_code,
                "delivered_at": iso(row.delivered_at),
            }
        )
    counts = reach.roster_counts(people.values(), groups_of)
    ordered = [reach.ALL, *sorted(key for key in counts if key != reach.ALL)]
    timers = session.scalars(
        select(EscalationTimer).where(EscalationTimer.activation_id == activation_id).order_by(EscalationTimer.entry)
    )
    return {
        "activation_id": activation_id,
        "check_in": bool(runbook and runbook.check_in),
        "counts": [{"group": key, **counts[key].as_dict()} for key in ordered],
        "people": [
            {
                "person": person_id,
                "name": names[person_id],
                "groups": list(groups_of[person_id]),
                "asked": state.asked,
                "reached": state.got_through,
                "answer": state.answer,
                "answered_via": answers[person_id].via if person_id in answers else None,
                "answered_at": iso(answers[person_id].answered_at) if person_id in answers else None,
                "escalations": state.pages,
                "deliveries": channels.get(person_id, []),
            }
            for person_id, state in sorted(people.items())
        ],
        "escalations": [
            {
                "entry": timer.entry,
                "if": timer.condition,
                "channel": timer.channel,
                "due_at": iso(timer.due_at),
                "fired_at": iso(timer.fired_at),
                "outcome": timer.outcome,
                "paged": timer.paged,
                "limited": timer.limited,
            }
            for timer in timers
        ],
    }


CSV_COLUMNS = ("person", "name", "groups", "asked", "reached", "answer", "answered_via", "answered_at", "channels")


def roster_csv(data: dict[str, Any]) -> str:
    """The roster as CSV, one line per person (no phone numbers or addresses)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for person in data["people"]:
        channels = "; ".join(
            f"{d['channel']} {d['status']}{' ' + d['error_code'] if d['error_code'] else ''}"
            for d in person["deliveries"]
        )
        writer.writerow(
            [
                _safe(person["person"]),
                _safe(person["name"]),
                " ".join(person["groups"]),
                "yes" if person["asked"] else "no",
                "yes" if person["reached"] else "no",
                {"ack": "acknowledged", "need_help": "need help"}.get(person["answer"] or "", "no answer"),
                person["answered_via"] or "",
                person["answered_at"] or "",
                channels,
            ]
        )
    return out.getvalue()


def _safe(value: str) -> str:
    """Keep spreadsheet programs from running a name as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
