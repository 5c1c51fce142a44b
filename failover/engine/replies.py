"""Two-way SMS and voice keypresses: answers, opt-outs, and a short help text for anything else.

``ACK`` / ``OK`` / ``1`` acknowledge every open activation that messaged the
sender (two outages at once page a person twice; one answer is enough), and
the answer names them; ``2`` answers "cannot work / need help" to the open
check-ins among them; ``STOP`` and
friends record an opt-out (Twilio confirms those itself, so we stay silent) and
``START`` clears it. Each inbound message is handled once (its MessageSid),
and every automatic answer counts against a per-number hourly limit, which
also stops ping-pong with auto-responders. Messages from numbers that are in
no contact list are audited - masked - and answered within a tighter limit.
Message bodies are never stored, logged or audited. An operator may also
answer for a person who called in (``acknowledge_on_behalf``), audited with
their name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.channels.callbacks import InboundSMS, Keypress
from failover.domain import reach
from failover.domain.replies import Reply, ReplyKind, parse
from failover.domain.runbooks import Catalog
from failover.engine import audit, ledger, limits, optouts, status_replies, tracking, verification
from failover.engine.rows import insert_once
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import (
    Activation,
    ActivationState,
    Answer,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentState,
)
from failover.privacy import mask_phone

HELP_TEXT = "Reply ACK (or 1) to acknowledge an alert, 2 if you cannot work or need help, STOP to opt out."
ACK_TEXT = "Acknowledged, thank you: {titles}"
MAX_TITLES, TITLE_CHARS = 3, 60  # an answer naming more alerts than this says "and N more"
NEED_HELP_TEXT = "Noted: you cannot work or need help. Someone will contact you."
NOTHING_OPEN = "Thanks - there is no open alert waiting for your answer."
UNKNOWN_TEXT = "This number sends emergency alerts and cannot read replies."
UNKNOWN_FACTOR = 10  # all unknown numbers together get this many times one number's answers per hour
ALL_UNKNOWN = "sms:unknown-senders"


@dataclass(frozen=True)
class Outcome:
    action: str  # acknowledged | need_help | opted_out | opted_in | help | nothing_open | unknown_sender | ...
    text: str | None = None  # the SMS we answer with, if any
    batch_ids: tuple[int, ...] = ()  # queued by a keyword (a report that confirmed an outage): relay after commit


# More keywords (staff reports, RUN by phone, poll answers: engine.talkback): None when the text is not theirs.
Talkback = Callable[[Session, InboundSMS, "str | None", dt.datetime], "Outcome | None"]


def handle_sms(
    session: Session,
    catalog: Catalog,
    message: InboundSMS,
    *,
    now: dt.datetime,
    reply_limit: int,
    actor: str = "sms",
    talkback: Talkback | None = None,
) -> Outcome:
    """Act on one inbound SMS; returns what to answer."""
    stored = tracking.store(
        session,
        provider=message.provider,
        kind="inbound",
        key=f"inbound:{message.message_sid}",
        now=now,
        provider_id=message.message_sid,
        applied_at=now,
    )
    person = catalog.contacts.by_phone(message.sender)
    person_id = person.id if person else None
    if stored is None:  # Twilio retried it, or someone replayed it: it was handled the first time
        audit.record(
            session,
            action="reply.duplicate",
            actor=actor,
            target_type="person" if person_id else None,
            target_id=person_id,
            details={"message_sid": message.message_sid},
        )
        return Outcome("duplicate")
    confirmed = verification.claim(session, phone=message.sender, body=message.body, now=now, actor=actor)
    if confirmed is not None:  # a YES to our "is this your number?" (issue 13); other YESes go on below
        return _answer(session, message.sender, "verified", confirmed, now, reply_limit)
    claimed = status_replies.claim(session, message, now=now)  # status page subscribers' YES and STOP
    if claimed is not None:
        return Outcome(*claimed)
    reply = parse(message.body)
    if reply.kind == ReplyKind.STOP:
        _, activation_ids = optouts.opt_out(
            session, phone=message.sender, person_id=person_id, keyword=reply.keyword, now=now, actor=actor
        )
        ledger.complete_finished(session, activation_ids, actor)  # their waiting rows were cancelled
        return Outcome("opted_out")  # Twilio confirms opt-outs itself and would refuse an answer of ours
    if reply.kind == ReplyKind.START:
        was_out = optouts.opt_in(session, phone=message.sender, person_id=person_id, keyword=reply.keyword, actor=actor)
        if was_out or reply.keyword != "YES":
            return Outcome("opted_in")
        reply = Reply(ReplyKind.ACK, "YES")  # "YES" from someone who never opted out means yes
    if talkback is not None and (handled := talkback(session, message, person_id, now)) is not None:
        if handled.text is None:
            return handled
        answered = _answer(session, message.sender, handled.action, handled.text, now, reply_limit)
        return replace(answered, batch_ids=handled.batch_ids)
    if person_id is None:
        return _stranger(session, message.sender, reply, now=now, reply_limit=reply_limit, actor=actor)
    if reply.kind in (ReplyKind.ACK, ReplyKind.NEED_HELP):
        activations = open_activations(session, person_id)
        if not activations:
            _audit_reply(session, "reply.nothing_open", person_id, actor, {"kind": reply.kind.value})
            return _answer(session, message.sender, "nothing_open", NOTHING_OPEN, now, reply_limit)
        runbooks = {a.id: catalog.runbook(a.runbook_id) for a in activations}
        if reply.kind == ReplyKind.NEED_HELP:
            activations = [a for a in activations if (book := runbooks[a.id]) is not None and book.check_in]
            if not activations:
                _audit_reply(session, "reply.unrecognised", person_id, actor, {"kind": reply.kind.value})
                return _answer(session, message.sender, "help", HELP_TEXT, now, reply_limit)
        kind = reach.ACK if reply.kind == ReplyKind.ACK else reach.NEED_HELP
        for activation in activations:
            record_answer(
                session, activation=activation, person_id=person_id, answer=kind, via="sms", now=now, actor=actor
            )
        if kind == reach.NEED_HELP:
            return _answer(session, message.sender, "need_help", NEED_HELP_TEXT, now, reply_limit)
        titles = [(book.title if (book := runbooks[a.id]) else a.runbook_id) for a in activations]
        return _answer(session, message.sender, "acknowledged", ack_text(titles), now, reply_limit)
    _audit_reply(session, "reply.unrecognised", person_id, actor, {"kind": reply.kind.value})
    return _answer(session, message.sender, "help", HELP_TEXT, now, reply_limit)


def ack_text(titles: list[str]) -> str:
    """The answer to an ACK: which alerts it acknowledged, kept to about one SMS."""
    shown = "; ".join(title[:TITLE_CHARS] for title in titles[:MAX_TITLES])
    if len(titles) > MAX_TITLES:
        shown += f"; and {len(titles) - MAX_TITLES} more"
    return ACK_TEXT.format(titles=shown)


def handle_keypress(session: Session, keypress: Keypress, *, now: dt.datetime, actor: str = "voice") -> bool:
    """A digit pressed during a voice alert; True when it acknowledged."""
    row = session.get(Delivery, keypress.delivery_id)
    details = {"call_sid": keypress.call_sid, "digits": keypress.digits[:4]}
    if row is None or row.channel != "voice" or (row.provider_id and row.provider_id != keypress.call_sid):
        audit.record(session, action="reply.unknown_call", actor=actor, details={**details, "delivery": row and row.id})
        return False
    if keypress.digits != "1":
        _audit_reply(session, "reply.unrecognised", row.person_id, actor, {**details, "via": "voice"})
        return False
    # "1" on a call is a plain ACK: it answers every open activation that reached this person.
    activations = {a.id: a for a in open_activations(session, row.person_id)}
    activations.setdefault(row.activation_id, session.get_one(Activation, row.activation_id))
    for activation in activations.values():
        record_answer(
            session, activation=activation, person_id=row.person_id, answer=reach.ACK, via="voice", now=now, actor=actor
        )
    return True


def open_activations(session: Session, person_id: str) -> list[Activation]:
    """Every activation of an open incident that sent this person something, oldest first."""
    return list(
        session.scalars(
            select(Activation)
            .where(
                Activation.id.in_(
                    select(Delivery.activation_id).where(
                        Delivery.person_id == person_id,
                        Delivery.status.not_in((DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)),
                    )
                ),
                Activation.incident_id.in_(select(Incident.id).where(Incident.state == IncidentState.CONFIRMED)),
                Activation.phase == "steps",
                Activation.state.in_((ActivationState.QUEUED, ActivationState.COMPLETED)),
            )
            .order_by(Activation.id)
        )
    )


def acknowledge_on_behalf(
    session: Session, *, activation_id: int, person_id: str, actor: str, note: str = "", now: dt.datetime
) -> None:
    """An operator records a person's acknowledgement (they phoned in, or answered on another channel)."""
    activation = session.get(Activation, activation_id)
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    if activation.phase != "steps" or activation.incident.state != IncidentState.CONFIRMED:
        raise Conflict(f"activation {activation_id} is not open: nothing to acknowledge")
    person_id = person_id.strip()
    messaged = session.scalar(
        select(Delivery.id)
        .where(
            Delivery.activation_id == activation_id,
            Delivery.person_id == person_id,
            Delivery.channel != "status",
            Delivery.status.not_in((DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)),
        )
        .limit(1)
    )
    if messaged is None:
        raise InvalidRequest(f"activation {activation_id} sent nothing to '{person_id}': check the person id")
    record_answer(
        session,
        activation=activation,
        person_id=person_id,
        answer=reach.ACK,
        via="console",
        now=now,
        actor=actor,
        note=note.strip(),
    )


def record_answer(
    session: Session,
    *,
    activation: Activation,
    person_id: str,
    answer: str,
    via: str,
    now: dt.datetime,
    actor: str,
    note: str = "",
) -> bool:
    """Store a person's answer to an activation (the latest one counts); True if it changed anything."""
    values = {"activation_id": activation.id, "person_id": person_id, "answer": answer, "via": via}
    keys = ("activation_id", "person_id")
    if not insert_once(session, Answer, {**values, "first_at": now, "answered_at": now}, keys):
        existing = session.scalars(
            select(Answer).where(Answer.activation_id == activation.id, Answer.person_id == person_id).with_for_update()
        ).one()
        if existing.answer == answer:
            return False
        existing.answer, existing.via, existing.answered_at = answer, via, now
    details: dict[str, object] = {"activation": activation.id, "via": via}
    if note:
        details["note"] = note
    audit.record(
        session,
        action="reply.acknowledged" if answer == reach.ACK else "reply.need_help",
        actor=actor,
        target_type="person",
        target_id=person_id,
        incident_id=activation.incident_id,
        details=details,
    )
    return True


def _answer(session: Session, sender: str, action: str, text: str, now: dt.datetime, reply_limit: int) -> Outcome:
    """Answer within the sender's hourly limit; beyond it, stay silent (and say so once in the audit log)."""
    verdict = limits.hit(session, limits.key_for("sms", sender), limit=reply_limit, now=now)
    if verdict.first_refusal:
        details = {"scope": "number", "limit": reply_limit}
        audit.record(session, action="reply.rate_limited", actor="sms", details=details)
    return Outcome(action, text if verdict.allowed else None)


def _stranger(
    session: Session, sender: str, reply: Reply, *, now: dt.datetime, reply_limit: int, actor: str
) -> Outcome:
    """A number in no contact list: audited (masked) and answered within a per-number and an overall limit."""
    per_number = limits.hit(session, limits.key_for("sms", sender), limit=reply_limit, now=now)
    overall = limits.hit(session, ALL_UNKNOWN, limit=reply_limit * UNKNOWN_FACTOR, now=now)
    masked = mask_phone(sender)
    if per_number.allowed and overall.allowed:
        audit.record(
            session, action="reply.unknown_sender", actor=actor, details={"sender": masked, "kind": reply.kind.value}
        )
        return Outcome("unknown_sender", UNKNOWN_TEXT)
    if per_number.first_refusal or overall.first_refusal:
        scope = "number" if not per_number.allowed else "all unknown senders"
        audit.record(session, action="reply.rate_limited", actor=actor, details={"sender": masked, "scope": scope})
    return Outcome("rate_limited")


def _audit_reply(session: Session, action: str, person_id: str, actor: str, details: dict[str, object]) -> None:
    audit.record(session, action=action, actor=actor, target_type="person", target_id=person_id, details=details)
