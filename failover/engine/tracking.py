"""Delivery receipts: provider callbacks applied to the ledger, each once, never backwards.

Every receipt is first stored as a ``ProviderEvent``; its unique key drops
repeats (SendGrid's ``sg_event_id``, Twilio's MessageSid + status). It is then
applied to its ledger row as ``domain.receipts.decide`` says, in the caller's
transaction with its audit row. A receipt for a row the dispatcher still holds
(``sending``) stays unapplied; the follow-up sweep applies it once the
dispatcher has recorded its own answer, so neither overwrites the other.
A receipt that turns a row ``failed`` starts the receipt-driven fallback at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from failover.channels.callbacks import StatusEvent
from failover.domain.receipts import Progress, decide
from failover.domain.runbooks import Catalog
from failover.engine import audit, fallback
from failover.engine.rows import insert_many_once, insert_once
from failover.models import Delivery, DeliveryStatus, ProviderEvent

# Longer than SendGrid's 24 h of retries and any replay window; older events are pruned.
EVENT_RETENTION = dt.timedelta(days=30)


@dataclass
class Recorded:
    applied: int = 0
    duplicates: int = 0
    deferred: int = 0
    ignored: int = 0
    unknown: int = 0
    batch_ids: list[int] = field(default_factory=list)


def store(session: Session, *, provider: str, kind: str, key: str, now: dt.datetime, **values: Any) -> int | None:
    """Keep a provider event once; the new row's id, or None if this event was seen before."""
    if not insert_once(
        session,
        ProviderEvent,
        {"provider": provider, "kind": kind, "event_key": key[:128], "received_at": now, **values},
        ("provider", "event_key"),
    ):
        return None
    return session.scalar(
        select(ProviderEvent.id).where(ProviderEvent.provider == provider, ProviderEvent.event_key == key[:128])
    )


def record_receipts(
    session: Session,
    catalog: Catalog | None | Callable[[], Catalog | None],
    events: Sequence[StatusEvent],
    *,
    now: dt.datetime,
    actor: str = "receipts",
) -> Recorded:
    """Store and apply a group of receipts: one Twilio callback, one SendGrid POST, or a queued group of hundreds.

    The cost is per group, not per receipt: the new events are stored with one
    ``INSERT ... ON CONFLICT DO NOTHING``, their rows locked with one ``SELECT
    ... FOR UPDATE`` (in id order, so two groups never deadlock), and the audit
    chain's head locked once for all their audit events. ``catalog`` may be a
    function: it is then called only if a receipt failed (for the fallback).
    """
    recorded = Recorded()
    tracked = [event for event in events if event.progress != Progress.NONE]
    recorded.ignored += len(events) - len(tracked)  # opens, clicks, inbound states: nothing to do with delivery
    stored = _store_all(session, tracked, now)
    recorded.duplicates += len(tracked) - len(stored)
    rows = _lock_rows(session, {event.delivery_id for event in stored if event.delivery_id is not None})
    failed: list[int] = []
    entries: list[audit.Entry] = []
    for event in stored:
        outcome = _apply(event, rows.get(event.delivery_id or 0), now, actor, entries)
        if outcome == "failed":
            failed.append(event.delivery_id or 0)
        if outcome in ("applied", "failed"):
            recorded.applied += 1
        elif outcome == "deferred":
            recorded.deferred += 1
        elif outcome == "ignored":
            recorded.ignored += 1
        else:
            recorded.unknown += 1
    audit.record_many(session, entries)
    if failed:  # the catalog is looked up only now, when a receipt failed: most groups never need it
        in_force = catalog() if callable(catalog) else catalog
        if in_force is not None:
            recorded.batch_ids = fallback.fall_back(session, in_force, now=now, delivery_ids=failed)
    return recorded


def _store_all(session: Session, events: Sequence[StatusEvent], now: dt.datetime) -> list[ProviderEvent]:
    """Insert the events not seen before (in one statement); those new ones, in the order they came."""
    values: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        key = (event.provider, event.event_key[:128])
        values.setdefault(  # a repeat inside the group is a duplicate like any other
            key,
            {
                "provider": event.provider,
                "kind": "status",
                "event_key": key[1],
                "received_at": now,
                "delivery_id": event.delivery_id,
                "provider_id": event.provider_id,
                "status": event.status,
                "progress": event.progress.label,
                "error_code": event.error_code,
                "detail": event.detail,
            },
        )
    if not values:
        return []
    ids = insert_many_once(session, ProviderEvent, list(values.values()), ("provider", "event_key"))
    if not ids:
        return []
    new = session.scalars(select(ProviderEvent).where(ProviderEvent.id.in_(ids))).all()
    return sorted(new, key=lambda event: event.id)  # ids follow the VALUES order: the order they came


def _lock_rows(session: Session, delivery_ids: set[int]) -> dict[int, Delivery]:
    if not delivery_ids:
        return {}
    rows = session.scalars(
        select(Delivery).where(Delivery.id.in_(sorted(delivery_ids))).order_by(Delivery.id).with_for_update()
    ).all()
    return {row.id: row for row in rows}


def apply_deferred(session: Session, *, now: dt.datetime, limit: int = 500, actor: str = "receipts") -> list[int]:
    """Apply receipts that waited for the dispatcher; the ids of rows they turned ``failed``."""
    events = session.scalars(
        select(ProviderEvent)
        .join(Delivery, Delivery.id == ProviderEvent.delivery_id)
        .where(
            ProviderEvent.kind == "status",
            ProviderEvent.applied_at.is_(None),
            Delivery.status != DeliveryStatus.SENDING,
        )
        .order_by(ProviderEvent.id)
        .limit(limit)
    ).all()
    rows = _lock_rows(session, {event.delivery_id for event in events if event.delivery_id is not None})
    entries: list[audit.Entry] = []
    failed = [
        event.delivery_id or 0
        for event in events
        if _apply(event, rows.get(event.delivery_id or 0), now, actor, entries) == "failed"
    ]
    audit.record_many(session, entries)
    return failed


def prune(session: Session, *, now: dt.datetime) -> None:
    session.execute(
        delete(ProviderEvent).where(
            ProviderEvent.received_at < now - EVENT_RETENTION, ProviderEvent.applied_at.is_not(None)
        )
    )


def _apply(event: ProviderEvent, row: Delivery | None, now: dt.datetime, actor: str, entries: list[audit.Entry]) -> str:
    """Apply one stored receipt to its (locked) row: applied | failed | deferred | ignored | unknown | mismatch.

    Its audit event goes to ``entries``, for the caller to append with the group's.
    """
    details: dict[str, object] = {"provider": event.provider, "status": event.status, "code": event.error_code}
    if row is None:
        event.applied_at = now
        entries.append(
            audit.Entry(action="receipt.unknown_delivery", actor=actor, details={**details, "delivery": None})
        )
        return "unknown"
    if row.provider_id and event.provider_id and row.provider_id != event.provider_id:
        # Another message than the one this row recorded: never let it settle this row.
        event.applied_at = now
        entries.append(
            audit.Entry(
                action="receipt.mismatch",
                actor=actor,
                target_type="delivery",
                target_id=row.id,
                details={**details, "provider_id": event.provider_id, "recorded": row.provider_id},
            )
        )
        return "mismatch"
    decision = decide(row.status, Progress.of(row.receipt), Progress.of(event.progress))
    if decision.defer:
        return "deferred"
    event.applied_at = now
    if not decision.record:
        return "ignored"
    before = row.status
    row.receipt = event.progress
    row.provider_status = event.status
    row.updated_at = now
    if event.provider_id and not row.provider_id:
        row.provider_id = event.provider_id
    if decision.ledger is None or decision.ledger == before:
        return "applied"
    row.status = decision.ledger
    action = "delivery.delivered"
    if decision.ledger == DeliveryStatus.DELIVERED:
        row.delivered_at = now
        row.error_code = row.last_error = None
    elif decision.ledger == DeliveryStatus.FAILED:
        row.error_code = (event.error_code or event.status or "failed")[:32]
        row.last_error = event.detail or f"{event.provider} reports {event.status}"
        action = "delivery.undelivered"
    if before in (DeliveryStatus.PENDING, DeliveryStatus.IN_DOUBT):
        # The provider has it: settle the row so it is never sent again.
        row.sent_at = row.sent_at or now
        row.transport = row.transport or event.provider
        row.next_attempt_at = None
        if decision.ledger == DeliveryStatus.SENT:
            action = "delivery.reconciled"
            details = {**details, "found": True, "via": "receipt", "provider_id": event.provider_id}
    entries.append(
        audit.Entry(
            action=action,
            actor=actor,
            target_type="delivery",
            target_id=row.id,
            details={**details, "channel": row.channel, "was": before},
        )
    )
    return "failed" if decision.ledger == DeliveryStatus.FAILED else "applied"
