"""SMS opt-outs: STOP is honoured by every later send until START.

Kept by phone number, as Twilio keeps them, and turned into person ids when
an activation is planned (``planning.plan(opted_out=...)`` skips their SMS and
calls). Opting out also cancels that number's SMS and calls still waiting to go.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from failover.domain.contacts import Contacts
from failover.engine import audit
from failover.engine.rows import insert_once
from failover.models import Delivery, DeliveryStatus, OptOut
from failover.privacy import mask_phone

PHONE_CHANNELS = ("sms", "voice")


def opted_out_people(session: Session, contacts: Contacts) -> set[str]:
    """Ids of the people whose current number is opted out."""
    people = (contacts.by_phone(phone) for phone in session.scalars(select(OptOut.phone)))
    return {person.id for person in people if person is not None}


def opt_out(
    session: Session, *, phone: str, person_id: str | None, keyword: str, now: dt.datetime, actor: str
) -> tuple[bool, list[int]]:
    """Record an opt-out (idempotent). Returns (newly recorded, activations whose waiting rows were cancelled)."""
    created = insert_once(
        session,
        OptOut,
        {"phone": phone, "person_id": person_id, "keyword": keyword[:16], "created_at": now},
        ("phone",),
    )
    cancelled = session.execute(
        update(Delivery)
        .where(
            Delivery.address == phone,
            Delivery.channel.in_(PHONE_CHANNELS),
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED, last_error="opted out (STOP)", updated_at=now)
        .returning(Delivery.activation_id)
        .execution_options(synchronize_session=False)
    ).all()
    activation_ids = sorted({row.activation_id for row in cancelled})
    if created or cancelled:
        audit.record(
            session,
            action="sms.opted_out",
            actor=actor,
            target_type="person" if person_id else None,
            target_id=person_id,
            details={
                "keyword": keyword,
                "sender": None if person_id else mask_phone(phone),
                "cancelled": len(cancelled),
            },
        )
    return created, activation_ids


def opt_in(session: Session, *, phone: str, person_id: str | None, keyword: str, actor: str) -> bool:
    """Clear an opt-out; True if there was one."""
    removed = session.execute(delete(OptOut).where(OptOut.phone == phone)).rowcount  # type: ignore[attr-defined]
    if removed:
        audit.record(
            session,
            action="sms.opted_in",
            actor=actor,
            target_type="person" if person_id else None,
            target_id=person_id,
            details={"keyword": keyword, "sender": None if person_id else mask_phone(phone)},
        )
    return bool(removed)
