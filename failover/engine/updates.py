"""Updates to an open incident: one more message to the people it already told, previewed, then sent once.

Recipients are the incident's own: each person and channel (SMS, email) its
runbooks' steps reached or are reaching - not escalation pages, not messages
that failed. With ``audience="silent"`` only those who have not answered any
of its activations. The text and the email subject are templates (sandboxed
Jinja2 with ``incident``, ``person``, ``eta`` and ``status_url``), rendered
when the update is previewed and again when it is sent: the console refuses
a confirm whose preview no longer matches. An update is an activation of its
own (``runbook_id="(update)"``, phase ``update.N``), so its rows go through
the ledger, receipts and the audit log like every other message, and the
form's request key makes a confirm submitted twice send once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from failover.domain.contacts import Contacts
from failover.domain.planning import DRILL_PREFIX, Plan, PlannedDelivery, SkippedRecipient
from failover.domain.preview import Preview, Prices, summarise
from failover.domain.runbooks import SMS_MAX_CHARS, Runbook, Trigger
from failover.domain.templates import UPDATE_FOLDER, UPDATE_NAMES, Templates
from failover.engine import audit
from failover.engine.activation import Accepted, incident_info, open_incident_by_id
from failover.engine.ledger import write_ledger  # one ledger writer for every row
from failover.errors import InvalidRequest
from failover.models import (
    Activation,
    ActivationState,
    Answer,
    Delivery,
    DeliveryStatus,
    Incident,
    OptOut,
)

RUNBOOK = "(update)"  # never a runbook id (those are [a-z0-9_-]), so no runbook's steps apply to its rows
AUDIENCES = ("all", "silent")
CHANNELS = ("sms", "email")
STEP = {"sms": "update.0", "email": "update.1"}
NOT_REACHING = (DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED, DeliveryStatus.FAILED)
OPEN_ONLY = "updates go to open incidents"


@dataclass(frozen=True)
class Update:
    audience: str  # all | silent
    channels: tuple[str, ...]
    subject: str
    text: str
    eta: str = ""
    status_url: str = ""


def templates_for_updates(templates: Templates) -> dict[str, str]:
    """The update texts to start from (templates/update/*), by name."""
    return {name: templates.source_of(name)[0] for name in templates.names() if name.startswith(UPDATE_FOLDER)}


def preview(
    session: Session,
    *,
    incident_id: int,
    update: Update,
    templates: Templates,
    contacts: Contacts | None,
    prices: Prices,
) -> Preview:
    incident = open_incident_by_id(session, incident_id, then=OPEN_ONLY)
    return summarise([(_runbook(incident), plan(session, incident, update, templates, contacts))], prices)


def send(
    session: Session,
    *,
    incident_id: int,
    update: Update,
    request_key: str,
    actor: str,
    templates: Templates,
    contacts: Contacts | None,
    now: dt.datetime,
) -> Accepted:
    """Write the update's ledger rows in the caller's transaction; the same request key twice sends once."""
    # Locked: one update at a time per incident, so the numbering and the request key hold.
    incident = open_incident_by_id(session, incident_id, lock=True, then=OPEN_ONLY)
    existing = session.scalars(select(Activation).where(Activation.request_key == request_key)).first()
    if existing is not None:
        return Accepted(existing.id, existing.incident_id, existing.state, created=False)
    planned = plan(session, incident, update, templates, contacts)
    number = session.scalar(
        select(func.count()).where(Activation.incident_id == incident.id, Activation.runbook_id == RUNBOOK)
    )
    eta = f", back by {update.eta}" if update.eta.strip() else ""
    activation = Activation(
        incident_id=incident.id,
        runbook_id=RUNBOOK,
        phase=f"update.{(number or 0) + 1}",
        state=ActivationState.QUEUED,
        reason=f"update to incident #{incident.id} ({update.audience}){eta}",
        requested_by=actor,
        drill=incident.drill,
        request_key=request_key,
        created_at=now,
        accepted_at=now,
    )
    session.add(activation)
    session.flush()
    batch_ids = write_ledger(session, activation.id, planned, now)
    counts = planned.count_by_channel()
    activation.summary = {"counts": counts, "groups": planned.count_by_group(), "skipped": len(planned.skipped)}
    if not planned.deliveries:
        activation.state, activation.completed_at = ActivationState.COMPLETED, now
    audit.record(
        session,
        action="update.queued",
        actor=actor,
        target_type="activation",
        target_id=activation.id,
        incident_id=incident.id,
        details={
            "audience": update.audience,
            "channels": list(update.channels),
            "counts": counts,
            "skipped": len(planned.skipped),
            "eta": update.eta,
            "status_url": update.status_url,
            "text_sha256": hashlib.sha256(update.text.encode()).hexdigest(),
        },
    )
    return Accepted(activation.id, incident.id, activation.state, batch_ids, counts, len(planned.skipped))


def plan(session: Session, incident: Incident, update: Update, templates: Templates, contacts: Contacts | None) -> Plan:
    """Every message of the update, rendered (pure apart from reading who the incident told)."""
    _check(update, templates)
    answered = set(
        session.scalars(
            select(Answer.person_id)
            .join(Activation, Activation.id == Answer.activation_id)
            .where(Activation.incident_id == incident.id)
        )
    )
    told: dict[tuple[str, str], str] = {}
    for person_id, channel, address in session.execute(
        select(Delivery.person_id, Delivery.channel, Delivery.address)
        .join(Activation, Activation.id == Delivery.activation_id)
        .where(
            Activation.incident_id == incident.id,
            Activation.phase == "steps",
            Delivery.step.like("steps.%"),  # fallbacks included; escalation pages are not "the recipients"
            Delivery.channel.in_(update.channels),
            Delivery.status.not_in(NOT_REACHING),
        )
        .order_by(Delivery.id.desc())  # the latest address wins
    ):
        told.setdefault((person_id, channel), address)
    opted_out = set(session.scalars(select(OptOut.phone)))
    base = {"incident": incident_info(incident), "eta": update.eta.strip(), "status_url": update.status_url.strip()}
    per_person = templates.uses_person(text=update.text) or templates.uses_person(text=update.subject)
    shared: tuple[str, str] | None = None
    result = Plan(RUNBOOK, "update")
    for (person_id, channel), address in sorted(told.items()):
        if update.audience == "silent" and person_id in answered:
            continue
        person = contacts.person(person_id) if contacts is not None else None
        if channel == "sms" and address in opted_out:
            result.skipped.append(
                SkippedRecipient(STEP[channel], person_id, channel, "opted out of SMS (replied STOP)")
            )
            continue
        if per_person or shared is None:
            context = {**base, "person": person}
            texts = (templates.render(context, text=update.subject), templates.render(context, text=update.text))
            shared = None if per_person else texts
        else:
            texts = shared
        subject, body = (_drill(text, incident.drill) for text in texts)
        if channel == "sms" and len(body) > SMS_MAX_CHARS:
            raise InvalidRequest(f"the update is {len(body)} characters as an SMS; Twilio accepts {SMS_MAX_CHARS}")
        result.deliveries.append(
            PlannedDelivery(
                STEP[channel],
                person_id,
                channel,
                address,
                subject if channel == "email" else None,
                body,
                person.groups if person else (),
            )
        )
    return result


def _check(update: Update, templates: Templates) -> None:
    if update.audience not in AUDIENCES:
        raise InvalidRequest(f"send the update to one of: {', '.join(AUDIENCES)}")
    if not update.channels or any(channel not in CHANNELS for channel in update.channels):
        raise InvalidRequest(f"choose the update's channels among {', '.join(CHANNELS)}")
    for label, text in (("subject", update.subject), ("text", update.text)):
        if not text.strip():
            raise InvalidRequest(f"the update needs a {label}")
        for problem in templates.check_source(text, "", UPDATE_NAMES):
            raise InvalidRequest(f"update {label}: {problem.message}")


def _drill(text: str, drill: bool) -> str:
    return DRILL_PREFIX + text if drill else text


def _runbook(incident: Incident) -> Runbook:
    """What the preview shows as the section's title (an update follows no runbook)."""
    title = f"Update to incident #{incident.id}"
    return Runbook.model_construct(id=RUNBOOK, title=title, trigger=Trigger(), steps=(), escalation=(), on_resolve=())
