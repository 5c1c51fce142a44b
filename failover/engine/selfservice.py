"""Self-service for personal contacts: a personal link, a small public page, one-time codes, then the roster.

While Microsoft is healthy an admin sends each person a link (by SMS where a
number is known, else by email) to a page where they enter their personal
mobile, personal email and language. Each new value is confirmed by a
6-digit code sent to it before it is used; then it becomes the person's
``self`` record, which outranks every synced source (domain.people) and so
survives later syncs. Links expire, are single-person and single-use, and
allow a few submissions and wrong codes before they lock. Only hashes of
tokens and codes are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from failover.domain.contacts import Person
from failover.domain.people import PeopleConfig, Record
from failover.domain.planning import Plan, PlannedDelivery, SkippedRecipient
from failover.engine import audit
from failover.engine import people as snapshots
from failover.engine.verification import send_aside
from failover.errors import InvalidRequest, NotFound
from failover.models_people import PersonRow, SelfServiceLink
from failover.privacy import mask_email, mask_phone

RUNBOOK = "people-self-service"
LINK_TTL = dt.timedelta(days=14)
CODE_TTL = dt.timedelta(minutes=30)
MAX_SUBMISSIONS = 3
MAX_FAILURES = 5
LINK_TEXT = "failover: please confirm your personal contact details for emergency alerts: {url} (valid 14 days)"
CODE_TEXT = "failover: your confirmation code is {code}. It is valid for 30 minutes."


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def invite(
    session: Session, *, people: Iterable[Person], actor: str, now: dt.datetime, public_url: str, label: str
) -> tuple[int, list[int], int]:
    """A personal link to each person (SMS if a number is known, else email). Returns (activation, batches, sent)."""
    planned = Plan(RUNBOOK, "steps")
    for person in people:
        channel, address = ("sms", person.phone) if person.phone else ("email", person.email)
        if not address:
            planned.skipped.append(SkippedRecipient("invite.0", person.id, "sms", "no phone number or address"))
            continue
        token = secrets.token_urlsafe(24)
        session.add(
            SelfServiceLink(person_id=person.id, token_hash=_hash(token), created_at=now, expires_at=now + LINK_TTL)
        )
        body = LINK_TEXT.format(url=f"{public_url.rstrip('/')}/me/{token}")
        subject = "Your emergency contact details" if channel == "email" else None
        planned.deliveries.append(PlannedDelivery("invite.0", person.id, channel, str(address), subject, body))
    activation_id, incident_id, batch_ids = send_aside(
        session, planned, title="Contact self-service links", reason=f"self-service: {label}", actor=actor, now=now
    )
    audit.record(
        session,
        action="people.links_sent",
        actor=actor,
        target_type="activation",
        target_id=activation_id,
        incident_id=incident_id,
        details={"selection": label, "links": len(planned.deliveries), "unreachable": len(planned.skipped)},
    )
    return activation_id, batch_ids, len(planned.deliveries)


@dataclass(frozen=True)
class Page:
    """What the public page may show: the person's name and what they have on file, masked."""

    name: str
    phone: str
    email: str
    language: str
    waiting_for_codes: bool


def link(session: Session, token: str, now: dt.datetime, *, lock: bool = False) -> SelfServiceLink:
    """The link of this token while it can be used; NotFound otherwise (same answer for every reason)."""
    query = select(SelfServiceLink).where(SelfServiceLink.token_hash == _hash(token))
    found = session.scalars(query.with_for_update() if lock else query).first()
    if found is None or found.used_at is not None or found.expires_at <= now or found.failures >= MAX_FAILURES:
        raise NotFound("this link is not valid any more: ask your administrator for a new one")
    return found


def page(session: Session, token: str, now: dt.datetime) -> Page:
    found = link(session, token, now)
    person = session.get(PersonRow, found.person_id)
    if person is None:
        raise NotFound("this link is not valid any more: ask your administrator for a new one")
    return Page(
        person.name,
        mask_phone(person.phone) if person.phone else "",
        mask_email(person.email) if person.email else "",
        person.language or "",
        found.phone_code_hash is not None or found.email_code_hash is not None,
    )


def submit(
    session: Session,
    token: str,
    *,
    phone: str | None,
    email: str | None,
    language: str | None,
    config: PeopleConfig,
    now: dt.datetime,
    actor: str = "self-service",
) -> list[int]:
    """Values entered on the page: a code is sent to each new phone and address. Returns the batch ids."""
    found = link(session, token, now, lock=True)
    if found.submissions >= MAX_SUBMISSIONS:
        raise InvalidRequest("too many changes through this link: ask your administrator for a new one")
    if not phone and not email and not language:
        raise InvalidRequest("enter a personal mobile number, a personal email address or a language")
    found.submissions += 1
    found.pending_phone, found.pending_email, found.pending_language = phone, email, language
    found.codes_expire_at = now + CODE_TTL
    planned = Plan(RUNBOOK, "steps")
    for channel, address in (("sms", phone), ("email", email)):
        code = f"{secrets.randbelow(10**6):06d}"
        if channel == "sms":
            found.phone_code_hash = _hash(code) if address else None
        else:
            found.email_code_hash = _hash(code) if address else None
        if address:
            subject = "Your confirmation code" if channel == "email" else None
            planned.deliveries.append(
                PlannedDelivery("code.0", found.person_id, channel, address, subject, CODE_TEXT.format(code=code))
            )
    if not planned.deliveries:  # a language alone needs no code
        _apply(session, found, now, actor, config)
        return []
    _, _, batch_ids = send_aside(
        session, planned, title="Contact self-service codes", reason="self-service codes", actor=actor, now=now
    )
    audit.record(
        session,
        action="people.self_service_submitted",
        actor=actor,
        target_type="person",
        target_id=found.person_id,
        details={"phone": mask_phone(phone) if phone else None, "email": mask_email(email) if email else None},
    )
    return batch_ids


def confirm(
    session: Session,
    token: str,
    *,
    phone_code: str,
    email_code: str,
    config: PeopleConfig,
    now: dt.datetime,
    actor: str = "self-service",
) -> bool:
    """True when every code matches: the values become the person's own record. A wrong code counts."""
    found = link(session, token, now, lock=True)
    if found.codes_expire_at is None or found.codes_expire_at <= now:
        raise InvalidRequest("the codes have expired: enter your details again")
    ok = all(
        expected is None or hmac.compare_digest(expected, _hash(given.strip()))
        for expected, given in ((found.phone_code_hash, phone_code), (found.email_code_hash, email_code))
    )
    if not ok:
        found.failures += 1
        audit.record(
            session,
            action="people.self_service_wrong_code",
            actor=actor,
            target_type="person",
            target_id=found.person_id,
        )
        return False
    _apply(session, found, now, actor, config)
    return True


def _apply(session: Session, found: SelfServiceLink, now: dt.datetime, actor: str, config: PeopleConfig) -> None:
    current = snapshots.source_records(session, "self").get(found.person_id) or Record(found.person_id)
    record = Record(
        found.person_id,
        phone=found.pending_phone or current.phone,
        email=found.pending_email or current.email,
        language=found.pending_language or current.language,
    )
    snapshots.apply(
        session,
        source="self",
        changes={found.person_id: record},
        config=config,
        now=now,
        actor=actor,
        kind="self",
        check_removals=False,
    )
    if found.pending_phone:  # confirmed by its code: as good as a YES
        session.execute(
            update(PersonRow)
            .where(PersonRow.id == found.person_id, PersonRow.phone == found.pending_phone)
            .values(phone_verified_at=now, phone_failed_at=None)
        )
    found.used_at = now
    found.pending_phone = found.pending_email = found.pending_language = None
    found.phone_code_hash = found.email_code_hash = None
    audit.record(
        session, action="people.self_service_confirmed", actor=actor, target_type="person", target_id=found.person_id
    )
