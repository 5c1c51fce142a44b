"""Polls in activations: numbered answers by SMS, tallies per group, CSV export, closing.

A person's number answers the newest open activation that asked them a poll
(a poll step delivered to them). The answer is stored (the latest counts)
and also acknowledges the activation, so the poll's follow-up - an
``unacknowledged`` escalation entry - re-asks only those who did not answer.
A poll is closed when an operator closes it or its incident is resolved; an
answer to a closed poll gets a clear reply and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain import polls, reach
from failover.domain.polls import PollSpec
from failover.domain.runbooks import Catalog
from failover.engine import audit, replies
from failover.engine.rows import insert_once
from failover.errors import Conflict, NotFound
from failover.models import Activation, Delivery, DeliveryStatus, Incident, IncidentState, Poll, PollAnswer

CLOSED_TEXT = "Thank you - that poll has closed, so your answer was not counted."
THANKS_TEXT = "Thanks: you answered {choice} ({option})."
RANGE_TEXT = "Please answer with a number from 1 to {n}: {text}"
RECENT_CLOSED = dt.timedelta(days=2)  # how far back an answer to a closed poll is recognised


@dataclass
class Answered:
    action: str  # poll_answered | poll_closed | poll_out_of_range
    text: str


def answer(
    session: Session, catalog: Catalog, *, person_id: str, choice: int, now: dt.datetime, actor: str = "sms"
) -> Answered | None:
    """A number from ``person_id``; None when no poll asked them (then it is an ordinary reply: ACK, 2)."""
    found = _asked(session, catalog, person_id, open_only=True)
    if found is None:
        if replies.open_activations(session, person_id):
            return None  # a poll closed, but another alert waits: the number is an ordinary ACK / 2 for it
        closed = _asked(session, catalog, person_id, open_only=False, since=now - RECENT_CLOSED)
        if closed is None:
            return None
        activation, key, _ = closed
        _audit(session, "poll.closed_answer", actor, person_id, activation, key)
        return Answered("poll_closed", CLOSED_TEXT)
    activation, key, spec = found
    poll = _poll(session, activation, key, spec, now)
    if poll.closed_at is not None:
        _audit(session, "poll.closed_answer", actor, person_id, activation, key)
        return Answered("poll_closed", CLOSED_TEXT)
    if not 1 <= choice <= len(spec.options):
        return Answered("poll_out_of_range", RANGE_TEXT.format(n=len(spec.options), text=spec.text())[:320])
    values = {"poll_id": poll.id, "person_id": person_id, "choice": choice, "answered_at": now}
    if not insert_once(session, PollAnswer, values, ("poll_id", "person_id")):
        row = session.scalars(
            select(PollAnswer).where(PollAnswer.poll_id == poll.id, PollAnswer.person_id == person_id).with_for_update()
        ).one()
        row.choice, row.answered_at = choice, now
    replies.record_answer(
        session, activation=activation, person_id=person_id, answer=reach.ACK, via="poll", now=now, actor=actor
    )
    _audit(session, "poll.answered", actor, person_id, activation, key, choice=choice)
    return Answered("poll_answered", THANKS_TEXT.format(choice=choice, option=spec.options[choice - 1]))


def close(session: Session, *, activation_id: int, step: str, actor: str, now: dt.datetime, catalog: Catalog) -> None:
    activation = session.get(Activation, activation_id)
    runbook = catalog.runbook(activation.runbook_id) if activation is not None else None
    spec = runbook.polls.get(step) if runbook is not None else None
    if activation is None or spec is None:
        raise NotFound(f"activation {activation_id} has no poll at {step}")
    poll = _poll(session, activation, step, spec, now)
    if poll.closed_at is not None:
        raise Conflict("the poll is already closed")
    poll.closed_at = now
    _audit(session, "poll.closed", actor, None, activation, step)


def tallies(session: Session, catalog: Catalog | None, activation_id: int) -> list[dict[str, Any]]:
    """Each poll of one activation: counts per option for everyone and per group, for the page."""
    activation = session.get(Activation, activation_id)
    runbook = catalog.runbook(activation.runbook_id) if catalog and activation else None
    if activation is None or runbook is None or not runbook.polls:
        return []
    found = []
    for key, spec in runbook.polls.items():
        asked = _asked_people(session, activation_id, key)
        row = session.scalars(select(Poll).where(Poll.activation_id == activation_id, Poll.step == key)).first()
        answers = _answers(session, row.id) if row else []
        groups_of = {p: _groups(catalog, p) for p in asked}
        result = polls.tally(spec.options, asked, [polls.Answer(a.person_id, a.choice) for a in answers], groups_of)
        found.append(
            {
                "step": key,
                "question": spec.question,
                "options": list(spec.options),
                "groups": result.groups,
                "answered": result.answered,
                "asked": result.asked,
                "closed": bool(row and row.closed_at) or activation.incident.state != IncidentState.CONFIRMED,
            }
        )
    return found


def export_csv(session: Session, catalog: Catalog | None, activation_id: int, step: str) -> str:
    activation = session.get(Activation, activation_id)
    runbook = catalog.runbook(activation.runbook_id) if catalog and activation else None
    spec = runbook.polls.get(step) if runbook is not None else None
    if spec is None:
        raise NotFound(f"activation {activation_id} has no poll at {step}")
    row = session.scalars(select(Poll).where(Poll.activation_id == activation_id, Poll.step == step)).first()
    chosen = {a.person_id: a for a in (_answers(session, row.id) if row else [])}
    lines = []
    for person_id in _asked_people(session, activation_id, step):
        person = catalog.contacts.person(person_id) if catalog else None
        got = chosen.get(person_id)
        lines.append(
            (
                person_id,
                person.name if person else "",
                " ".join(_groups(catalog, person_id)),
                got.choice if got else None,
                got.answered_at.isoformat() if got else "",
            )
        )
    return polls.csv_text(spec.question, spec.options, lines)


# -- helpers ----------------------------------------------------------------------------


def _asked(
    session: Session, catalog: Catalog, person_id: str, *, open_only: bool, since: dt.datetime | None = None
) -> tuple[Activation, str, PollSpec] | None:
    """The newest activation (open, or any recent one) that sent ``person_id`` a poll step."""
    query = (
        select(Activation, Delivery.step)
        .join(Delivery, Delivery.activation_id == Activation.id)
        .join(Incident, Incident.id == Activation.incident_id)
        .where(
            Delivery.person_id == person_id,
            Delivery.channel == "sms",
            Delivery.step.like("steps.%"),
            Delivery.status.not_in((DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)),
        )
        .order_by(Activation.id.desc(), Delivery.step.desc())
    )
    if open_only:
        query = query.where(Incident.state == IncidentState.CONFIRMED, Activation.phase == "steps")
    elif since is not None:
        query = query.where(Activation.created_at >= since)
    for activation, key in session.execute(query.limit(50)):
        runbook = catalog.runbook(activation.runbook_id)
        spec = runbook.polls.get(key) if runbook is not None else None
        if spec is not None:
            return activation, key, spec
    return None


def _poll(session: Session, activation: Activation, key: str, spec: PollSpec, now: dt.datetime) -> Poll:
    values = {
        "activation_id": activation.id,
        "step": key,
        "question": spec.question,
        "options": list(spec.options),
        "opened_at": now,
    }
    insert_once(session, Poll, values, ("activation_id", "step"))
    return session.scalars(select(Poll).where(Poll.activation_id == activation.id, Poll.step == key)).one()


def _asked_people(session: Session, activation_id: int, key: str) -> list[str]:
    return list(
        session.scalars(
            select(Delivery.person_id)
            .where(
                Delivery.activation_id == activation_id,
                Delivery.step == key,
                Delivery.status.not_in((DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)),
            )
            .distinct()
            .order_by(Delivery.person_id)
        )
    )


def _answers(session: Session, poll_id: int) -> list[PollAnswer]:
    return list(session.scalars(select(PollAnswer).where(PollAnswer.poll_id == poll_id)))


def _groups(catalog: Catalog | None, person_id: str) -> tuple[str, ...]:
    person = catalog.contacts.person(person_id) if catalog else None
    return tuple(person.groups) if person else ()


def _audit(
    session: Session,
    action: str,
    actor: str,
    person_id: str | None,
    activation: Activation,
    key: str,
    **extra: object,
) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        target_type="person" if person_id else "activation",
        target_id=person_id or activation.id,
        incident_id=activation.incident_id,
        details={"activation": activation.id, "step": key, **extra},
    )
