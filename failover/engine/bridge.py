"""Bridge lines in the database: opened per bridge step, people dialled in, who joined (domain.bridge).

``sweep`` (beat's follow-up) opens a ``Bridge`` row for each bridge step of
an activation of an open incident and returns the people its ``dial:`` names,
once; the caller places the calls after commit and records each with
``placed``. ``admit`` checks a PIN keyed in by a caller; ``conference_event``
applies Twilio's signed conference callbacks (join, leave). Every step is
audited; numbers only ever masked.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.channels.twilio_conference import ConferenceEvent
from failover.clock import utcnow
from failover.domain import planning
from failover.domain.bridge import Line, filters, line_for
from failover.domain.runbooks import Catalog
from failover.domain.templates import Templates
from failover.engine import audit, optouts
from failover.engine.rows import insert_once
from failover.models import (
    Activation,
    ActivationState,
    Bridge,
    BridgeParticipant,
    Incident,
    IncidentState,
)
from failover.privacy import mask_phone
from failover.settings import Settings

ACTOR = "bridge"
LineOf = Callable[[int], Line | None]


@dataclass(frozen=True)
class Dial:
    bridge_id: int
    person_id: str
    phone: str
    line: Line


def line_of(settings: Settings) -> LineOf:
    """Which line an incident gets: a conference on FAILOVER_BRIDGE_NUMBER (else TWILIO_FROM), or the fixed one."""
    number = settings.bridge_number or settings.twilio_from
    secret = settings.flask_secret_key()

    def line(incident_id: int) -> Line | None:
        if not number:
            return None
        return line_for(incident_id, number=number, secret=secret, fixed_pin=settings.bridge_pin)

    return line


def install(templates: Templates, settings: Settings) -> None:
    """Templates render the real number, PIN and tel: link (the domain.bridge filters)."""
    templates.env.filters.update(filters(line_of(settings)))


def sweep(session: Session, catalog: Catalog, line_of: LineOf) -> list[Dial]:
    """Open the bridges of open activations' bridge steps; the people to dial into the new ones."""
    rows = session.scalars(
        select(Activation)
        .join(Incident, Incident.id == Activation.incident_id)
        .where(
            Incident.state == IncidentState.CONFIRMED,
            Activation.phase == "steps",
            Activation.state.in_((ActivationState.QUEUED, ActivationState.COMPLETED)),
        )
        .order_by(Activation.id)
    ).all()
    dials: list[Dial] = []
    opted_out: set[str] | None = None
    for activation in rows:
        runbook = catalog.runbook(activation.runbook_id)
        for key, spec in (runbook.bridges if runbook else {}).items():
            line = line_of(activation.incident_id)
            if line is None:
                continue
            values = {
                "activation_id": activation.id,
                "incident_id": activation.incident_id,
                "step": key,
                "mode": line.mode,
                "name": line.conference,
                "number": line.number,
                "pin": line.pin,
                "created_at": utcnow(),
            }
            if not insert_once(session, Bridge, values, ("activation_id", "step")):
                continue
            bridge = session.scalars(
                select(Bridge).where(Bridge.activation_id == activation.id, Bridge.step == key)
            ).one()
            if opted_out is None:
                opted_out = optouts.opted_out_people(session, catalog.contacts)
            people = [p for p in planning.expand(catalog, spec.dial) if p.phone and p.id not in opted_out]
            dials += [Dial(bridge.id, p.id, str(p.phone), line) for p in people]
            audit.record(
                session,
                action="bridge.opened",
                actor=ACTOR,
                target_type="incident",
                target_id=activation.incident_id,
                incident_id=activation.incident_id,
                details={"mode": line.mode, "activation": activation.id, "step": key, "dial": [p.id for p in people]},
            )
    return dials


def placed(session: Session, dial: Dial, call_sid: str | None) -> None:
    bridge = session.get_one(Bridge, dial.bridge_id)
    if call_sid is None:
        audit.record(
            session,
            action="bridge.dial_failed",
            actor=ACTOR,
            target_type="person",
            target_id=dial.person_id,
            incident_id=bridge.incident_id,
            details={"bridge": bridge.id},
        )
        return
    values = {
        "bridge_id": bridge.id,
        "call_sid": call_sid,
        "person_id": dial.person_id,
        "number": mask_phone(dial.phone),
    }
    insert_once(session, BridgeParticipant, values, ("bridge_id", "call_sid"))
    audit.record(
        session,
        action="bridge.dialled",
        actor=ACTOR,
        target_type="person",
        target_id=dial.person_id,
        incident_id=bridge.incident_id,
        details={"bridge": bridge.id, "call_sid": call_sid},
    )


def admit(session: Session, catalog: Catalog | None, *, call_sid: str, caller: str, pin: str) -> Bridge | None:
    """The open conference bridge this PIN opens (and the caller noted as its participant), or None."""
    bridges = session.scalars(
        select(Bridge)
        .join(Incident, Incident.id == Bridge.incident_id)
        .where(Incident.state == IncidentState.CONFIRMED, Bridge.mode == "conference")
    ).all()
    found = next((b for b in bridges if hmac.compare_digest(b.pin, pin)), None)
    person = catalog.contacts.by_phone(caller) if catalog is not None and caller else None
    masked = mask_phone(caller) if caller else "unknown"
    if found is None:
        audit.record(session, action="bridge.pin_wrong", actor=ACTOR, details={"caller": masked, "call_sid": call_sid})
        return None
    values = {"bridge_id": found.id, "call_sid": call_sid, "person_id": person.id if person else None, "number": masked}
    insert_once(session, BridgeParticipant, values, ("bridge_id", "call_sid"))
    return found


def conference_event(session: Session, event: ConferenceEvent, now: dt.datetime) -> bool:
    """Apply one signed conference callback; False when it names no bridge of ours."""
    bridge = session.scalars(
        select(Bridge).where(Bridge.incident_id == event.incident_id, Bridge.mode == "conference").order_by(Bridge.id)
    ).first()
    if bridge is None:
        return False
    if bridge.conference_sid is None:
        bridge.conference_sid = event.conference_sid
    if event.event not in ("participant-join", "participant-leave") or event.call_sid is None:
        return True
    insert_once(
        session,
        BridgeParticipant,
        {"bridge_id": bridge.id, "call_sid": event.call_sid, "person_id": None, "number": "unknown"},
        ("bridge_id", "call_sid"),
    )
    row = session.scalars(
        select(BridgeParticipant)
        .where(BridgeParticipant.bridge_id == bridge.id, BridgeParticipant.call_sid == event.call_sid)
        .with_for_update()
    ).one()
    joined = event.event == "participant-join"
    if joined and row.joined_at is None:
        row.joined_at = now
    elif not joined and row.left_at is None:
        row.left_at = now
    else:
        return True  # Twilio repeats callbacks: applied once
    audit.record(
        session,
        action="bridge.joined" if joined else "bridge.left",
        actor=ACTOR,
        target_type="person" if row.person_id else "call",
        target_id=row.person_id or event.call_sid,
        incident_id=bridge.incident_id,
        details={"bridge": bridge.id, "call_sid": event.call_sid},
    )
    return True


def incident_bridges(session: Session, catalog: Catalog | None, incident_id: int) -> list[dict[str, Any]]:
    """The incident page's view: each bridge's number, PIN and who joined."""
    found = []
    for bridge in session.scalars(select(Bridge).where(Bridge.incident_id == incident_id).order_by(Bridge.id)):
        people = []
        for row in session.scalars(
            select(BridgeParticipant).where(BridgeParticipant.bridge_id == bridge.id).order_by(BridgeParticipant.id)
        ):
            person = catalog.contacts.person(row.person_id) if catalog and row.person_id else None
            people.append(
                {
                    "who": person.name if person else (row.person_id or row.number),
                    "joined_at": row.joined_at.isoformat() if row.joined_at else None,
                    "left_at": row.left_at.isoformat() if row.left_at else None,
                }
            )
        line = Line(bridge.mode, bridge.number, bridge.pin, bridge.incident_id)
        found.append(
            {"mode": bridge.mode, "number": bridge.number, "pin": bridge.pin, "tel": line.tel, "people": people}
        )
    return found
