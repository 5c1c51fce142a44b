"""The activation page at any size: every count over every row, one page of people, and a version to poll.

``view`` answers "who was not reached" for an activation of 3,000 people or
more without sending all of them: the counts (ledger states, people reached,
each filter) and the Failures list are computed over every row, and only one
page of people (``PAGE_SIZE``, filtered and searched on the server) is read in
full. ``version`` is a cheap fingerprint of what the page shows; the open page
polls with it and gets the page again only when something changed.

Only person ids, names, groups and masked addresses leave here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from failover.domain import planning, reach
from failover.domain.labels import channel_name, step_label, transport_name
from failover.domain.receipts import RECEIPT_TRANSPORTS
from failover.domain.runbooks import Catalog, Runbook
from failover.engine import roster
from failover.engine.queries import activation_summary, iso, status_counts
from failover.errors import NotFound
from failover.models import (
    Activation,
    ActivationState,
    Answer,
    Delivery,
    DeliveryStatus,
    EscalationTimer,
    IncidentState,
)
from failover.privacy import mask_address

PAGE_SIZE = 50
FAILURES_SHOWN = 50
NAMES_SHOWN = 6  # "would page Alice, Bob, ... and 12 more"
STATUS_WORDS = {
    "pending": "queued",
    "sending": "sending",
    "in_doubt": "in doubt",
    "sent": "sent, no receipt yet",
    "delivered": "delivered",
    "failed": "failed",
    "skipped": "unreachable",
    "cancelled": "cancelled",
}
OPEN_ROWS = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.IN_DOUBT)


def version(session: Session, activation_id: int, now: dt.datetime) -> str:
    """Changes whenever anything the page shows changes (and each minute, for "4 min ago" and countdowns)."""
    activation = _activation(session, activation_id)
    rows = session.execute(
        select(func.count(), func.max(Delivery.updated_at), func.max(Delivery.id)).where(
            Delivery.activation_id == activation_id
        )
    ).one()
    statuses = sorted(status_counts(session, [activation_id])[activation_id].items())
    answers = session.execute(
        select(func.count(), func.max(Answer.answered_at)).where(Answer.activation_id == activation_id)
    ).one()
    fired = session.scalar(
        select(func.count()).where(
            EscalationTimer.activation_id == activation_id, EscalationTimer.fired_at.is_not(None)
        )
    )
    parts = (
        tuple(rows),
        statuses,
        tuple(answers),
        fired,
        activation.state,
        activation.incident.state,
        now.replace(second=0, microsecond=0),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def view(
    session: Session,
    activation_id: int,
    catalog: Catalog | None,
    *,
    now: dt.datetime,
    show: str = "all",
    query: str = "",
    page: int = 1,
    escalation_limit: int = 3,
) -> dict[str, Any]:
    """Everything the activation page shows; ``show``/``query``/``page`` pick the people listed."""
    activation = _activation(session, activation_id)
    if show not in reach.FILTERS:
        show = "all"
    runbook = catalog.runbook(activation.runbook_id) if catalog else None
    counts = status_counts(session, [activation_id])[activation_id]
    summary = activation_summary(activation, counts)
    states = roster.states(session, activation_id, incident_id=activation.incident_id)
    people_of = _people(catalog, states)
    filters = reach.filter_counts(states.values())
    chosen = _chosen(states, people_of, show, query.strip().lower())
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    awaiting = _awaiting(session, activation_id)
    incident = activation.incident
    live = incident.state == IncidentState.CONFIRMED or awaiting > 0 or activation.state == ActivationState.QUEUED
    return {
        "a": {
            **summary,
            "incident_title": incident.title,
            "incident_state": incident.state,
            "override": activation.override,
            "runbook_title": runbook.title if runbook else activation.runbook_id,
            "accepted_at": iso(activation.accepted_at),
        },
        "version": version(session, activation_id, now),
        "live": live,
        "awaiting": awaiting,
        "tiles": summary["progress"],
        "people_total": filters["all"],
        "reached": sum(1 for state in states.values() if state.asked and state.got_through),
        "asked": sum(1 for state in states.values() if state.asked),
        "filters": [{"key": key, "label": label, "count": filters[key]} for key, label in reach.FILTERS.items()],
        "filter_count": filters,
        "show": show,
        "query": query,
        "page": page,
        "pages": pages,
        "matching": len(chosen),
        "people": _page_rows(session, activation_id, runbook, states, people_of, shown),
        "failures": _failures(session, activation_id, runbook, people_of),
        "groups": _groups(states, people_of),
        "steps": _steps(session, activation_id, runbook),
        "outbox": _outbox(session, activation_id),
        "escalations": _escalations(session, activation, runbook, catalog, states, people_of, now, escalation_limit),
        "approval_pages": _approval_pages(session, activation_id, catalog),
        "check_in": bool(runbook and runbook.check_in),
    }


# -- pieces -------------------------------------------------------------------------------


def _activation(session: Session, activation_id: int) -> Activation:
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    return activation


def _people(catalog: Catalog | None, states: dict[str, reach.PersonState]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each person's name and groups (their id and no groups when the catalog does not know them)."""
    people: dict[str, tuple[str, tuple[str, ...]]] = {}
    known = roster.lookup(catalog.contacts if catalog else None, states)
    for person_id in states:
        person = known.get(person_id)
        people[person_id] = (person.name, person.groups) if person else (person_id, ())
    return people


def _name(people_of: dict[str, tuple[str, tuple[str, ...]]], catalog_person: str) -> str:
    return people_of.get(catalog_person, (catalog_person, ()))[0]


def _chosen(
    states: dict[str, reach.PersonState],
    people_of: dict[str, tuple[str, tuple[str, ...]]],
    show: str,
    query: str,
) -> list[str]:
    found = [
        person_id
        for person_id, state in states.items()
        if reach.matches(state, show)
        and (not query or query in person_id.lower() or query in people_of[person_id][0].lower())
    ]
    return sorted(found, key=lambda person_id: (people_of[person_id][0].lower(), person_id))


def _awaiting(session: Session, activation_id: int) -> int:
    """Rows still being sent, or sent through a provider whose receipt has not come yet."""
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.activation_id == activation_id,
                or_(
                    Delivery.status.in_(OPEN_ROWS),
                    (Delivery.status == DeliveryStatus.SENT) & Delivery.transport.in_(sorted(RECEIPT_TRANSPORTS)),
                ),
            )
        )
        or 0
    )


def person_state(state: reach.PersonState) -> tuple[str, str]:
    """The badge of a person: (css class, words)."""
    if state.got_through:
        return "reached", "reached"
    if state.unreachable:
        return "unreachable", "unreachable: no channel"
    if state.failed:
        return "failed", "failed"
    return "unreached", "not reached yet"


def _page_rows(
    session: Session,
    activation_id: int,
    runbook: Runbook | None,
    states: dict[str, reach.PersonState],
    people_of: dict[str, tuple[str, tuple[str, ...]]],
    shown: list[str],
) -> list[dict[str, Any]]:
    if not shown:
        return []
    rows_of: dict[str, list[Delivery]] = defaultdict(list)
    for row in session.scalars(
        select(Delivery)
        .where(
            Delivery.activation_id == activation_id,
            Delivery.person_id.in_(shown),
            Delivery.channel != "status",
            Delivery.step.not_like(roster.APPROVAL_STEPS),
        )
        .order_by(Delivery.id)
    ):
        rows_of[row.person_id].append(row)
    messages = {  # step by step, as the runbook reads
        person_id: [_message(row, runbook) for row in sorted(rows, key=lambda r: (_step_order(r.step), r.id))]
        for person_id, rows in rows_of.items()
    }
    answers = {
        a.person_id: a
        for a in session.scalars(
            select(Answer).where(Answer.activation_id == activation_id, Answer.person_id.in_(shown))
        )
    }
    out = []
    for person_id in shown:
        state = states[person_id]
        css, words = person_state(state)
        answer = answers.get(person_id)
        out.append(
            {
                "person": person_id,
                "name": people_of[person_id][0],
                "groups": list(people_of[person_id][1]),
                "state": css,
                "state_text": words,
                "answer": state.answer,
                "answered_via": answer.via if answer else None,
                "answered_at": iso(answer.answered_at) if answer else None,
                "escalations": state.pages,
                "messages": messages.get(person_id, []),
            }
        )
    return out


def _message(row: Delivery, runbook: Runbook | None) -> dict[str, Any]:
    status = row.status
    words = STATUS_WORDS.get(status, status)
    if status == DeliveryStatus.SENT and row.transport == "outbox":
        words = "in the outbox: not sent"
    if status == DeliveryStatus.SKIPPED and row.last_error:
        words = f"unreachable: {row.last_error}"
    return {
        "label": step_label(row.step, row.channel, runbook),
        "channel": row.channel,
        "to": mask_address(row.address),
        "status": status,
        "status_text": words,
        "error_code": row.error_code,
        "error": row.last_error if status == DeliveryStatus.FAILED else None,
    }


def _failures(
    session: Session, activation_id: int, runbook: Runbook | None, people_of: dict[str, tuple[str, tuple[str, ...]]]
) -> dict[str, Any]:
    """Every failed row counts; the first ``FAILURES_SHOWN`` are listed, and the list says how many more there are."""
    where = (Delivery.activation_id == activation_id, Delivery.status == DeliveryStatus.FAILED)
    total = int(session.scalar(select(func.count()).where(*where)) or 0)
    rows = session.scalars(select(Delivery).where(*where).order_by(Delivery.id).limit(FAILURES_SHOWN))
    return {
        "total": total,
        "rows": [
            {
                "person": row.person_id,
                "name": _name(people_of, row.person_id),
                "label": step_label(row.step, row.channel, runbook),
                "channel": row.channel,
                "to": mask_address(row.address),
                "error_code": row.error_code,
                "error": row.last_error,
                "at": iso(row.updated_at),
            }
            for row in rows
        ],
    }


def _groups(
    states: dict[str, reach.PersonState], people_of: dict[str, tuple[str, tuple[str, ...]]]
) -> list[dict[str, Any]]:
    counts = reach.roster_counts(states.values(), {p: groups for p, (_, groups) in people_of.items()})
    ordered = [reach.ALL, *sorted(key for key in counts if key != reach.ALL)]
    return [{"group": key, **counts[key].as_dict()} for key in ordered]


def _steps(session: Session, activation_id: int, runbook: Runbook | None) -> list[dict[str, Any]]:
    """Per step: its label, what carried it and how far its messages got."""
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for step, channel, transport, status, count in session.execute(
        select(Delivery.step, Delivery.channel, Delivery.transport, Delivery.status, func.count())
        .where(Delivery.activation_id == activation_id, Delivery.step.not_like(roster.APPROVAL_STEPS))
        .group_by(Delivery.step, Delivery.channel, Delivery.transport, Delivery.status)
    ):
        item = steps.setdefault(
            (step, channel),
            {"step": step, "label": step_label(step, channel, runbook), "transports": set(), "counts": Counter()},
        )
        if transport:
            item["transports"].add(transport)
        item["counts"][status] += count
    ordered = sorted(steps.values(), key=lambda s: _step_order(s["step"]))
    return [
        {
            "label": s["label"],
            "transport": ", ".join(transport_name(t) for t in sorted(s["transports"])),
            "counts": dict(s["counts"]),
            "total": sum(s["counts"].values()),
        }
        for s in ordered
    ]


def _step_order(key: str) -> tuple[int, int]:
    phase, _, number = key.partition(".")
    rank = {"steps": 0, "on_resolve": 1, "escalation": 2}.get(phase, 3)
    return rank, int(number) if number.isdigit() else 0


def _outbox(session: Session, activation_id: int) -> list[str]:
    """Channels whose messages of this activation went to the outbox: nobody received those."""
    channels = session.scalars(
        select(Delivery.channel)
        .where(Delivery.activation_id == activation_id, Delivery.transport == "outbox")
        .distinct()
        .order_by(Delivery.channel)
    )
    return [channel_name(c) for c in channels]


def _escalations(
    session: Session,
    activation: Activation,
    runbook: Runbook | None,
    catalog: Catalog | None,
    states: dict[str, reach.PersonState],
    people_of: dict[str, tuple[str, tuple[str, ...]]],
    now: dt.datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """Each escalation: when, whom it would page if it fired now (or whom it paged), with a countdown."""
    timers = list(
        session.scalars(
            select(EscalationTimer)
            .where(EscalationTimer.activation_id == activation.id)
            .order_by(EscalationTimer.entry)
        )
    )
    if not timers:
        return []
    paged: dict[int, list[str]] = defaultdict(list)
    for step, person_id in session.execute(
        select(Delivery.step, Delivery.person_id).where(
            Delivery.activation_id == activation.id,
            Delivery.step.like(roster.ESCALATION_STEPS),
            Delivery.status.not_in(roster.NOT_SENT),
        )
    ):
        paged[int(step.partition(".")[2])].append(person_id)
    out = []
    for timer in timers:
        entry = runbook.escalation[timer.entry] if runbook and timer.entry < len(runbook.escalation) else None
        if timer.fired_at is not None:
            whom = paged.get(timer.entry, [])
        elif entry is not None and catalog is not None:
            recipients = [p.id for p in planning.expand(catalog, entry.to)]
            whom = reach.escalation_targets(recipients, states, entry.if_, limit=limit).page
        else:
            whom = []
        names = [_name(people_of, p) if p in people_of else _contact_name(catalog, p) for p in whom]
        out.append(
            {
                "label": step_label(f"escalation.{timer.entry}", timer.channel, runbook),
                "if": timer.condition,
                "channel": channel_name(timer.channel),
                "due_at": iso(timer.due_at),
                "seconds_left": max(0, int((timer.due_at - now).total_seconds())),
                "fired_at": iso(timer.fired_at),
                "outcome": timer.outcome,
                "paged": timer.paged,
                "limited": timer.limited,
                "whom": names[:NAMES_SHOWN],
                "whom_more": max(0, len(names) - NAMES_SHOWN),
                "whom_count": len(names),
            }
        )
    return out


def _contact_name(catalog: Catalog | None, person_id: str) -> str:
    person = catalog.contacts.person(person_id) if catalog else None
    return person.name if person else person_id


def _approval_pages(session: Session, activation_id: int, catalog: Catalog | None) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Delivery.person_id, Delivery.status, Delivery.transport, Delivery.last_error)
        .where(Delivery.activation_id == activation_id, Delivery.step.like(roster.APPROVAL_STEPS))
        .order_by(Delivery.id)
    )
    return [
        {
            "person": person_id,
            "name": _contact_name(catalog, person_id),
            "status": status,
            "status_text": "in the outbox: not sent"
            if status == DeliveryStatus.SENT and transport == "outbox"
            else STATUS_WORDS.get(status, status),
            "error": error if status in (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED) else None,
        }
        for person_id, status, transport, error in rows
    ]
