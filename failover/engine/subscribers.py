"""Status page subscribers: sign-up, double opt-in, unsubscribe, and telling them of every update once.

Subscribers are not staff: they live in ``status_subscribers``, never in the
contact list. Email confirms by a link sent through SendGrid, SMS by replying
YES (engine/status_replies.py), webhooks are added by an admin. Sign-up never
says whether an address is already subscribed, and is throttled per address
and per client. Every message - confirmations and incident updates - goes
through the delivery ledger like a runbook's (the ``status-subscribers``
activations of one internal, closed incident), so limits, retries, receipts,
opt-outs and the audit log apply, and the ledger's unique key (activation x
step x person x channel) makes each update reach each subscriber once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain import statuspage as sp
from failover.domain.contacts import normalise_phone
from failover.domain.planning import Plan, PlannedDelivery
from failover.engine import audit, limits
from failover.engine.ledger import write_ledger
from failover.engine.rows import insert_once
from failover.errors import InvalidRequest, NotFound
from failover.models import (
    Activation,
    ActivationState,
    Delivery,
    Incident,
    IncidentState,
    Notice,
    NoticeUpdate,
    OptOut,
    StatusSubscriber,
)
from failover.privacy import mask_address

KINDS = ("email", "sms", "webhook")


class TooManyRequests(InvalidRequest):
    """Too many sign-ups from one client (HTTP 429)."""


PENDING, CONFIRMED, UNSUBSCRIBED = "pending", "confirmed", "unsubscribed"
RUNBOOK = "status-subscribers"  # the activations' runbook id: not a file, the ledger's name for these messages
HOLDER_TITLE = "Status page subscribers"
CONFIRM_TTL = dt.timedelta(hours=48)
MAX_CONFIRMATIONS = 5  # confirmation messages one address ever gets while pending
TELL_BATCH = 20  # updates fanned out per run
STALE_UPDATE = dt.timedelta(hours=6)  # an update older than this when first seen is not sent (e.g. after an outage)
SMS_CHARS = 300


@dataclass(frozen=True)
class Texts:
    """What the messages say and link to."""

    page_name: str
    public_url: str  # the live service (forms, confirm and unsubscribe links)

    @property
    def page_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/status"


# -- addresses -----------------------------------------------------------------------------------------------


def normalise(kind: str, address: str) -> str:
    """The canonical address of a subscriber, or InvalidRequest saying what is wrong with it."""
    text = (address or "").strip()
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
    if not text:
        raise InvalidRequest(f"an {'email address' if kind == 'email' else 'address'} is needed")
    if len(text) > 300:
        raise InvalidRequest("the address is longer than 300 characters")
    if kind == "email":
        try:
            return validate_email(text, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise InvalidRequest(f"not an email address: {exc}") from None
    if kind == "sms":
        try:
            return normalise_phone(re.sub(r"[\s().-]", "", text))
        except ValueError:
            raise InvalidRequest("not a mobile number in international form, such as +44 7700 900123") from None
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise InvalidRequest("a webhook needs an http(s) URL without credentials")
    return text


def _components(chosen: Sequence[str] | None, known: Sequence[str]) -> list[str] | None:
    if not chosen:
        return None
    try:
        picked = sp.valid_components({name: sp.OPERATIONAL for name in chosen}, known)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return None if set(picked) == set(known) else sorted(picked)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unsubscribe_token(secret: bytes, subscriber_id: int) -> str:
    mac = hmac.new(secret, f"status-unsubscribe:{subscriber_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{subscriber_id}-{mac}"


def delivery_unsubscribe_token(secret: bytes, delivery_id: int) -> str:
    """The List-Unsubscribe token of one email to a subscriber (the mail channel knows deliveries, not people)."""
    mac = hmac.new(secret, f"status-unsubscribe-delivery:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"d{delivery_id}-{mac}"


def is_update_step(step: str | None) -> bool:
    """Subscriber update rows have steps ``u<update id>``; runbook steps always carry a dot."""
    return bool(step) and re.fullmatch(r"u\d+", step or "") is not None


def webhook_key(secret: bytes, url: str) -> str:
    """The key a webhook subscriber verifies our signature with (shown to the admin who adds it)."""
    return hmac.new(secret, f"status-webhook:{url}".encode(), hashlib.sha256).hexdigest()


def _person(subscriber_id: int) -> str:
    return f"sub:{subscriber_id}"


# -- sign-up, confirmation, unsubscribe ------------------------------------------------------------------------


@dataclass(frozen=True)
class Signup:
    batch_ids: list[int]


def subscribe(
    session: Session,
    *,
    kind: str,
    address: str,
    components: Sequence[str] | None,
    known: Sequence[str],
    client: str,
    texts: Texts,
    now: dt.datetime,
    limit: int,
) -> Signup:
    """Ask to subscribe. The answer is the same whether or not the address is known (nothing is revealed)."""
    if kind not in ("email", "sms"):
        raise InvalidRequest("subscribe by email or by SMS")
    if not limits.hit(session, limits.key_for("sub-client", client), limit=limit * 4, now=now).allowed:
        raise TooManyRequests("too many sign-ups from here; try again in an hour")
    address = normalise(kind, address)
    chosen = _components(components, known)
    if not limits.hit(session, limits.key_for("sub-addr", f"{kind}:{address}"), limit=limit, now=now).allowed:
        return Signup([])  # quietly: saying "too many" would say the address was tried before
    row = session.scalars(
        select(StatusSubscriber).where(StatusSubscriber.kind == kind, StatusSubscriber.address == address)
    ).one_or_none()
    if row is not None and row.state == CONFIRMED:
        return Signup([])  # already subscribed: nothing changes without the owner's confirmation
    if row is None:  # two sign-ups of one address at once: one row, both answered the same
        values = {"kind": kind, "address": address, "state": PENDING, "confirm_sent": 0, "created_at": now}
        insert_once(session, StatusSubscriber, values, ("kind", "address"))
        row = session.scalars(
            select(StatusSubscriber).where(StatusSubscriber.kind == kind, StatusSubscriber.address == address)
        ).one()
        if row.state == CONFIRMED:
            return Signup([])
    if row.confirm_sent >= MAX_CONFIRMATIONS and row.state == PENDING:
        return Signup([])
    token = f"{row.id}-{secrets.token_urlsafe(24)}"
    row.state, row.components, row.confirm_hash = PENDING, chosen, _hash(token)
    row.confirm_sent += 1
    row.confirm_sent_at = now
    row.unsubscribed_at = None
    audit.record(
        session,
        action="subscriber.requested",
        actor="public",
        target_type="subscriber",
        target_id=str(row.id),
        details={"kind": kind, "address": mask_address(address)},
    )
    if kind == "email":
        link = f"{texts.public_url.rstrip('/')}/status/confirm/{token}"
        subject = f"Confirm your subscription to {texts.page_name}"
        body = (
            f"Someone (hopefully you) asked to get incident updates from {texts.page_name} at this address.\n\n"
            f"To confirm, open this link within 48 hours:\n{link}\n\n"
            "If it was not you, ignore this message: nothing will be sent unless you confirm."
        )
    else:
        subject = None
        body = f"{texts.page_name}: reply YES to get incident updates by SMS. Ignore this to get none. STOP to opt out."
    holder = _activation(session, "confirm", now)
    plan = _plan([PlannedDelivery(f"c{row.confirm_sent}", _person(row.id), kind, address, subject, body)])
    return Signup(write_ledger(session, holder.id, plan, now))


def confirm(session: Session, *, token: str, now: dt.datetime, via: str = "link") -> StatusSubscriber:
    """Confirm a pending subscription by its token; forged, used or expired tokens are a NotFound (404)."""
    row = _by_token(session, token)
    if row is None or row.state != PENDING or row.confirm_hash is None:
        raise NotFound("this confirmation link is not valid (used, replaced or mistyped)")
    if not hmac.compare_digest(row.confirm_hash, _hash(token)):
        raise NotFound("this confirmation link is not valid (used, replaced or mistyped)")
    if row.confirm_sent_at is None or row.confirm_sent_at + CONFIRM_TTL < now:
        raise NotFound("this confirmation link has expired; subscribe again")
    return _confirmed(session, row, now, via)


def _confirmed(session: Session, row: StatusSubscriber, now: dt.datetime, via: str) -> StatusSubscriber:
    row.state, row.confirmed_at, row.confirm_hash = CONFIRMED, now, None
    audit.record(
        session,
        action="subscriber.confirmed",
        actor=via,
        target_type="subscriber",
        target_id=str(row.id),
        details={"kind": row.kind, "address": mask_address(row.address)},
    )
    return row


def confirm_sms(session: Session, *, phone: str, now: dt.datetime) -> StatusSubscriber | None:
    """A YES from a number with a pending SMS subscription confirms it; None when there is none."""
    row = session.scalars(
        select(StatusSubscriber).where(
            StatusSubscriber.kind == "sms", StatusSubscriber.address == phone, StatusSubscriber.state == PENDING
        )
    ).one_or_none()
    if row is None or row.confirm_sent_at is None or row.confirm_sent_at + CONFIRM_TTL < now:
        return None
    return _confirmed(session, row, now, "sms")


def unsubscribe(session: Session, *, token: str, secret: bytes, now: dt.datetime, via: str = "link") -> bool:
    """One-click unsubscribe by a signed token; True when it was subscribed. A forged token is a NotFound."""
    if token.startswith("d"):
        head = _row_id(token[1:])
        delivery = session.get(Delivery, head) if head is not None and len(token) < 200 else None
        valid = delivery is not None and hmac.compare_digest(delivery_unsubscribe_token(secret, delivery.id), token)
        person = delivery.person_id if delivery is not None and valid else ""
        row = session.get(StatusSubscriber, int(person[4:])) if person.startswith("sub:") else None
    else:
        row = _by_token(session, token)
        if row is not None and not hmac.compare_digest(unsubscribe_token(secret, row.id), token):
            row = None
    if row is None:
        raise NotFound("this unsubscribe link is not valid")
    return _unsubscribed(session, row, now, via)


def unsubscribe_sms(session: Session, *, phone: str, now: dt.datetime) -> bool:
    row = session.scalars(
        select(StatusSubscriber).where(StatusSubscriber.kind == "sms", StatusSubscriber.address == phone)
    ).one_or_none()
    return row is not None and _unsubscribed(session, row, now, "sms")


def remove(session: Session, *, subscriber_id: int, actor: str, now: dt.datetime) -> None:
    row = session.get(StatusSubscriber, subscriber_id)
    if row is None:
        raise NotFound(f"no subscriber {subscriber_id}")
    _unsubscribed(session, row, now, actor, action="subscriber.removed")


def _unsubscribed(
    session: Session, row: StatusSubscriber, now: dt.datetime, via: str, action: str = "subscriber.unsubscribed"
) -> bool:
    was = row.state != UNSUBSCRIBED
    if was:
        row.state, row.unsubscribed_at, row.confirm_hash = UNSUBSCRIBED, now, None
        audit.record(
            session,
            action=action,
            actor=via,
            target_type="subscriber",
            target_id=str(row.id),
            details={"kind": row.kind, "address": mask_address(row.address)},
        )
    return was


def add_webhook(
    session: Session, *, url: str, components: Sequence[str] | None, known: Sequence[str], actor: str, now: dt.datetime
) -> StatusSubscriber:
    """An admin adds a webhook subscriber (confirmed at once: an admin vouches for the URL)."""
    address = normalise("webhook", url)
    chosen = _components(components, known)
    row = session.scalars(
        select(StatusSubscriber).where(StatusSubscriber.kind == "webhook", StatusSubscriber.address == address)
    ).one_or_none()
    if row is None:
        row = StatusSubscriber(kind="webhook", address=address, confirm_sent=0, created_at=now)
        session.add(row)
    row.state, row.components, row.confirmed_at, row.unsubscribed_at = CONFIRMED, chosen, now, None
    session.flush()
    audit.record(session, action="subscriber.added", actor=actor, target_type="subscriber", target_id=str(row.id))
    return row


def _by_token(session: Session, token: str) -> StatusSubscriber | None:
    head = _row_id(token or "")
    if head is None or len(token) > 200:
        return None
    return session.get(StatusSubscriber, head)


def _row_id(token: str) -> int | None:
    """The row id a token starts with, if it is one a database can hold (a forged one may not be)."""
    head = token.split("-", 1)[0]
    if not head.isascii() or not head.isdigit() or len(head) > 10 or int(head) > 2_147_483_647:
        return None
    return int(head)


def listing(session: Session, *, state: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
    query = select(StatusSubscriber).order_by(StatusSubscriber.id).limit(limit)
    if state:
        query = query.where(StatusSubscriber.state == state)
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "address": r.address,
            "components": r.components,
            "state": r.state,
            "created_at": r.created_at,
            "confirmed_at": r.confirmed_at,
            "unsubscribed_at": r.unsubscribed_at,
        }
        for r in session.scalars(query)
    ]


# -- telling them ------------------------------------------------------------------------------------------


def tell(
    session: Session,
    *,
    texts: Texts,
    now: dt.datetime,
    secret: bytes,
    webhook_body: Callable[[int, str], str | None],
) -> list[int]:
    """Write the ledger rows for updates no subscriber has been told of yet; returns the batch ids to relay.

    ``webhook_body(notice_id, unsubscribe_url)`` renders the Statuspage webhook JSON for one incident.
    """
    updates = list(
        session.scalars(
            select(NoticeUpdate)
            .where(NoticeUpdate.told_at.is_(None))
            .order_by(NoticeUpdate.id)
            .limit(TELL_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not updates:
        return []
    subscribers = list(session.scalars(select(StatusSubscriber).where(StatusSubscriber.state == CONFIRMED)))
    opted_out = set(session.scalars(select(OptOut.phone))) if any(s.kind == "sms" for s in subscribers) else set()
    batch_ids: list[int] = []
    for update in updates:
        update.told_at = now
        notice = session.get(Notice, update.notice_id)
        if notice is None or update.created_at < now - STALE_UPDATE:
            continue
        touched = set(update.components or notice.components or {})
        recipients = [
            s
            for s in subscribers
            if (s.components is None or not touched or touched & set(s.components))
            and not (s.kind == "sms" and s.address in opted_out)
        ]
        if not recipients:
            continue
        planned = []
        label = sp.PROGRESS_LABELS.get(update.progress, update.progress)
        subject = f"[{texts.page_name}] {notice.title[:150]}: {label}"
        email_body = _email_body(texts, notice, update, label)
        sms_body = _sms_body(texts, notice, update, label)
        step = f"u{update.id}"
        for s in recipients:
            if s.kind == "email":
                planned.append(PlannedDelivery(step, _person(s.id), "email", s.address, subject, email_body))
            elif s.kind == "sms":
                planned.append(PlannedDelivery(step, _person(s.id), "sms", s.address, None, sms_body))
            else:
                unsubscribe = f"{texts.page_url}/unsubscribe/{unsubscribe_token(secret, s.id)}"
                body = webhook_body(notice.id, unsubscribe)
                if body is not None:
                    planned.append(PlannedDelivery(step, _person(s.id), "webhook", s.address, None, body))
        activation = _activation(session, f"n{notice.id}", now)
        batch_ids += write_ledger(session, activation.id, _plan(planned), now)
        audit.record(
            session,
            action="subscribers.told",
            actor="status-page",
            target_type="notice",
            target_id=str(notice.id),
            details={"update": update.id, "status": update.progress, "recipients": len(planned)},
        )
    return batch_ids


def audience(session: Session, components: Sequence[str]) -> dict[str, int]:
    """How many confirmed subscribers of each kind an update touching ``components`` would reach (previews)."""
    touched = set(components)
    counts = {kind: 0 for kind in KINDS}
    for kind, chosen in session.execute(
        select(StatusSubscriber.kind, StatusSubscriber.components).where(StatusSubscriber.state == CONFIRMED)
    ):
        if chosen is None or not touched or touched & set(chosen):
            counts[kind] += 1
    return counts


def preview_texts(texts: Texts, title: str, progress: str, body: str) -> dict[str, str]:
    """What subscribers will read, for the operator's preview (the same functions write the ledger rows)."""
    label = sp.PROGRESS_LABELS.get(progress, progress)
    notice = Notice(title=title, components={})
    update = NoticeUpdate(progress=progress, body=body, components={}, created_at=dt.datetime.now(dt.UTC))
    return {
        "email_subject": f"[{texts.page_name}] {title[:150]}: {label}",
        "sms": _sms_body(texts, notice, update, label),
    }


def _email_body(texts: Texts, notice: Notice, update: NoticeUpdate, label: str) -> str:
    components = ", ".join(sorted(update.components or notice.components or {}))
    return (
        f"{notice.title}\n{label} - {update.created_at.strftime('%d %b %Y %H:%M UTC')}\n"
        f"{f'Affected: {components}' + chr(10) if components else ''}\n{update.body}\n\n"
        f"Current status: {texts.page_url}\n"
        "You get this because you subscribed to this status page. To stop, use your mail program's "
        "Unsubscribe button, or the unsubscribe link on the status page.\n"
    )


def _sms_body(texts: Texts, notice: Notice, update: NoticeUpdate, label: str) -> str:
    tail = f" {texts.page_url} STOP to unsubscribe"
    head = f"{texts.page_name}: {notice.title} - {label}: "
    room = max(40, SMS_CHARS - len(head) - len(tail))
    text = " ".join(update.body.split())
    return f"{head}{text[:room]}{'...' if len(text) > room else ''}{tail}"


def _plan(deliveries: list[PlannedDelivery]) -> Plan:
    return Plan(RUNBOOK, "subscribers", deliveries=deliveries)


def _activation(session: Session, phase: str, now: dt.datetime) -> Activation:
    """The activation subscriber messages of one kind hang from, under one closed internal incident."""
    holder = session.scalars(
        select(Incident).where(Incident.source == "status", Incident.title == HOLDER_TITLE).order_by(Incident.id)
    ).first()
    if holder is None:
        holder = Incident(
            title=HOLDER_TITLE,
            services=[],
            state=IncidentState.RESOLVED,
            source="status",
            opened_by="status-page",
            opened_at=now,
            resolved_at=now,
            resolved_by="status-page",
        )
        session.add(holder)
        session.flush()
    activation = session.scalars(
        select(Activation).where(
            Activation.incident_id == holder.id, Activation.runbook_id == RUNBOOK, Activation.phase == phase
        )
    ).one_or_none()
    if activation is None:
        activation = Activation(
            incident_id=holder.id,
            runbook_id=RUNBOOK,
            phase=phase,
            state=ActivationState.QUEUED,
            reason="status page subscribers",
            requested_by="status-page",
            created_at=now,
            accepted_at=now,
        )
        session.add(activation)
        session.flush()
    activation.state, activation.completed_at = ActivationState.QUEUED, None
    return activation
