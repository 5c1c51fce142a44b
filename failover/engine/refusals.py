"""Refused webhook calls: counted and sampled, so nobody can fill the audit log without a signature.

Each webhook endpoint answers a refusal with a 4xx whatever happens here. For
the audit log, refusals are grouped by endpoint and HTTP status in windows of
:data:`WINDOW`: the first refusal of a window is audited at once (with its
reason and address), the rest only increment a counter row, and when the window
has passed one more audit event says how many followed. A flood of unsigned
requests therefore costs one counter update each instead of a turn at the audit
chain's lock, and leaves two audit rows per window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from failover.engine import audit
from failover.models import WebhookRefusal
from failover.privacy import scrub

WINDOW = dt.timedelta(minutes=5)
REASON_CHARS = 300
REMOTE_CHARS = 64


@dataclass(frozen=True)
class Refusal:
    endpoint: str  # a fixed name such as "twilio/status" or "signals", never caller input
    status: int
    reason: str
    remote: str | None
    actor: str = "webhook"
    size: int | None = None


def action_of(endpoint: str) -> str:
    return "signal.rejected" if endpoint == "signals" else "webhook.rejected"


def refused(session: Session, refusal: Refusal, *, now: dt.datetime) -> bool:
    """Count one refusal; True when it was audited (the first of its window)."""
    key = f"{refusal.endpoint}:{refusal.status}"
    reason = scrub(refusal.reason, REASON_CHARS)
    remote = (refusal.remote or "")[:REMOTE_CHARS] or None
    row = session.scalars(select(WebhookRefusal).where(WebhookRefusal.key == key).with_for_update()).first()
    if row is not None and now - row.window_start < WINDOW:
        row.count += 1
        row.last_at, row.reason, row.remote = now, reason, remote
        return False
    if row is not None:
        _summarise(session, row)
        row.window_start, row.last_at, row.count, row.reason, row.remote = now, now, 0, reason, remote
    elif not _insert(session, key, refusal, reason, remote, now):
        return refused(session, refusal, now=now)  # another process opened the window meanwhile
    details = {"endpoint": refusal.endpoint, "status": refusal.status, "reason": reason, "remote": remote}
    if refusal.size is not None:
        details["bytes"] = refusal.size
    details["sampling"] = f"first of its {int(WINDOW.total_seconds() // 60)}-minute window; later ones are counted"
    audit.record(session, action=action_of(refusal.endpoint), actor=refusal.actor, details=details)
    return True


def flush(session: Session, *, now: dt.datetime) -> int:
    """Audit the counts of windows that have ended (beat calls it); returns how many summaries were written."""
    rows = session.scalars(
        select(WebhookRefusal).where(WebhookRefusal.window_start <= now - WINDOW).with_for_update()
    ).all()
    written = 0
    for row in rows:
        written += _summarise(session, row)
        session.delete(row)
    session.flush()
    return written


def _insert(session: Session, key: str, refusal: Refusal, reason: str, remote: str | None, now: dt.datetime) -> bool:
    try:
        with session.begin_nested():
            session.add(
                WebhookRefusal(
                    key=key,
                    endpoint=refusal.endpoint,
                    status=refusal.status,
                    window_start=now,
                    last_at=now,
                    count=0,
                    reason=reason,
                    remote=remote,
                )
            )
    except IntegrityError:
        return False
    return True


def _summarise(session: Session, row: WebhookRefusal) -> int:
    if row.count == 0:
        return 0
    audit.record(
        session,
        action=action_of(row.endpoint),
        actor="webhook",
        details={
            "endpoint": row.endpoint,
            "status": row.status,
            "count": row.count,
            "from": audit.iso(row.window_start),
            "until": audit.iso(row.last_at),
            "reason": row.reason,
            "remote": row.remote,
            "sampling": "refusals after the first of the window, counted",
        },
    )
    return 1
