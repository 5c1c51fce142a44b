"""Contact verification: "reply YES to confirm this is your number", sent through the ledger, answered by SMS.

``start`` writes one SMS per selected person into the delivery ledger (an
activation of the built-in ``people-verify`` runbook under a resolved, drill
incident named "Contact verification", so every guarantee of a broadcast
holds: one send per person, rate limits, receipts) and a pending challenge
per number. ``claim`` is the inbound-SMS hook: it takes a YES only from a
number with a pending challenge of ours, so a status-page subscriber's YES,
say, goes on to whoever asked them. ``readiness`` says, per group, who has a
verified number, who was never reached, and whose number failed for good.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from failover.channels.base import TWILIO_PERMANENT
from failover.domain.contacts import Person
from failover.domain.planning import Plan, PlannedDelivery, SkippedRecipient
from failover.engine import audit
from failover.engine.ledger import write_ledger
from failover.models import Activation, ActivationState, Delivery, DeliveryStatus, Incident, IncidentState
from failover.models_people import PersonGroup, PersonRow, Verification
from failover.privacy import mask_phone

RUNBOOK = "people-verify"
STEP = "verify.0"
TEXT = (
    "failover: this number gets emergency alerts when Microsoft 365 is down. "
    "Reply YES to confirm it is yours. Reply STOP to opt out."
)
CONFIRMED_TEXT = "Thank you: this number is confirmed for emergency alerts."
YES_WORDS = frozenset({"YES", "Y", "JA", "OUI", "SI", "SÍ"})
TTL = dt.timedelta(days=7)
REACHED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def start(
    session: Session, *, people: Iterable[Person], actor: str, now: dt.datetime, label: str
) -> tuple[int, list[int], int]:
    """Ask each person with a number to confirm it. Returns (activation id, batch ids, texts)."""
    planned = Plan(RUNBOOK, "steps")
    challenges = []
    for person in people:
        if not person.phone:
            planned.skipped.append(SkippedRecipient(STEP, person.id, "sms", "no phone number"))
            continue
        planned.deliveries.append(PlannedDelivery(STEP, person.id, "sms", person.phone, None, TEXT, person.groups))
        challenges.append({"person_id": person.id, "phone": person.phone, "sent_at": now, "expires_at": now + TTL})
    activation_id, incident_id, batch_ids = send_aside(
        session, planned, title="Contact verification", reason=f"contact verification: {label}", actor=actor, now=now
    )
    if challenges:
        session.execute(
            update(Verification)
            .where(
                Verification.person_id.in_([c["person_id"] for c in challenges]), Verification.confirmed_at.is_(None)
            )
            .values(expires_at=now)  # an older challenge is replaced by this one
        )
        session.add_all(Verification(**c) for c in challenges)
    audit.record(
        session,
        action="people.verify_sent",
        actor=actor,
        target_type="activation",
        target_id=activation_id,
        incident_id=incident_id,
        details={"selection": label, "texts": len(planned.deliveries), "without_phone": len(planned.skipped)},
    )
    return activation_id, batch_ids, len(planned.deliveries)


def send_aside(
    session: Session, planned: Plan, *, title: str, reason: str, actor: str, now: dt.datetime
) -> tuple[int, int, list[int]]:
    """Messages about the directory (verification, self-service links and codes) through the delivery ledger:
    an activation of a built-in runbook under a resolved drill incident. Returns (activation, incident, batches)."""
    incident = Incident(
        title=title,
        services=[],
        state=IncidentState.RESOLVED,
        source="people",
        drill=True,  # not a real incident: kept off the open incidents and the status page
        opened_by=actor,
        opened_at=now,
        resolved_at=now,
        resolved_by=actor,
    )
    session.add(incident)
    session.flush()
    counts: dict[str, int] = defaultdict(int)
    for delivery in planned.deliveries:
        counts[delivery.channel] += 1
    activation = Activation(
        incident_id=incident.id,
        runbook_id=planned.runbook_id,
        state=ActivationState.QUEUED,
        reason=reason,
        requested_by=actor,
        created_at=now,
        accepted_at=now,
        summary=dict(counts),
    )
    session.add(activation)
    session.flush()
    return activation.id, incident.id, write_ledger(session, activation.id, planned, now)


def claim(session: Session, *, phone: str, body: str, now: dt.datetime, actor: str) -> str | None:
    """The answer to a YES from a number we asked to confirm; None when this message is not ours to take."""
    if (body or "").strip().strip(".!").upper() not in YES_WORDS:
        return None
    challenge = session.scalars(
        select(Verification)
        .where(Verification.phone == phone, Verification.confirmed_at.is_(None), Verification.expires_at > now)
        .order_by(Verification.id.desc())
        .with_for_update()
    ).first()
    if challenge is None:
        return None
    challenge.confirmed_at = now
    session.execute(
        update(PersonRow)
        .where(PersonRow.id == challenge.person_id, PersonRow.phone == phone)
        .values(phone_verified_at=now, phone_failed_at=None)
    )
    audit.record(
        session,
        action="people.verified",
        actor=actor,
        target_type="person",
        target_id=challenge.person_id,
        details={"phone": mask_phone(phone)},
    )
    return CONFIRMED_TEXT


def failed_for_good(session: Session, person_ids: Iterable[str] | None = None) -> set[str]:
    """People whose number failed permanently in some send (and who have not confirmed it since)."""
    codes = [str(code) for code in TWILIO_PERMANENT]
    query = (
        select(Delivery.person_id)
        .join(PersonRow, PersonRow.id == Delivery.person_id)
        .where(
            Delivery.channel.in_(("sms", "voice")),
            Delivery.status == DeliveryStatus.FAILED,
            Delivery.error_code.in_(codes),
            Delivery.address == PersonRow.phone,
            PersonRow.phone_verified_at.is_(None) | (PersonRow.phone_verified_at < Delivery.updated_at),
        )
        .distinct()
    )
    if person_ids is not None:
        query = query.where(Delivery.person_id.in_(list(person_ids)))
    return set(session.scalars(query))


def readiness(session: Session) -> dict[str, Any]:
    """Per group (and for everyone): people, verified personal number, never reached, failed numbers."""
    reached = set(
        session.scalars(
            select(Delivery.person_id).where(Delivery.status.in_(REACHED), Delivery.channel != "status").distinct()
        )
    )
    failed = failed_for_good(session)
    people = {
        pid: verified is not None
        for pid, verified in session.execute(
            select(PersonRow.id, PersonRow.phone_verified_at).where(PersonRow.removed_at.is_(None))
        )
    }
    members: dict[str, list[str]] = defaultdict(list)
    for pid, group in session.execute(
        select(PersonGroup.person_id, PersonGroup.group_name)
        .join(PersonRow, PersonRow.id == PersonGroup.person_id)
        .where(PersonRow.removed_at.is_(None))
    ):
        members[group].append(pid)

    def figure(ids: list[str]) -> dict[str, Any]:
        verified = sum(1 for pid in ids if people.get(pid))
        unverified = sorted(pid for pid in ids if not people.get(pid))
        return {
            "people": len(ids),
            "verified": verified,
            "share": round(verified / len(ids), 3) if ids else 0.0,
            "unverified": unverified[:20],
            "unverified_count": len(unverified),
            "never_reached": sorted(pid for pid in ids if pid not in reached)[:20],
            "never_reached_count": sum(1 for pid in ids if pid not in reached),
            "failed": sorted(pid for pid in ids if pid in failed),
        }

    return {"all": figure(list(people)), "groups": {g: figure(ids) for g, ids in sorted(members.items())}}


def pending(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(Verification.confirmed_at.is_(None))) or 0)
