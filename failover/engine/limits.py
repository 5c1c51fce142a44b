"""Fixed-window counters in the database: the same limit for every web process, restart-proof.

Keys are hashes (``sms:<sha256 of the number>``), so the table holds no phone
numbers. Used to cap automatic answers to inbound SMS, which also breaks loops
with auto-responders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from failover.engine.rows import insert_once
from failover.models import InboundLimit

HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    first_refusal: bool  # the first time in this window the limit said no: worth one audit event


def key_for(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:64]}"


def hit(session: Session, key: str, *, limit: int, now: dt.datetime, window: dt.timedelta = HOUR) -> Verdict:
    """Count one event under ``key``; allowed while at most ``limit`` happened in the current window."""
    insert_once(session, InboundLimit, {"key": key, "window_start": now, "count": 0}, ("key",))
    row = session.scalars(select(InboundLimit).where(InboundLimit.key == key).with_for_update()).one()
    if row.window_start + window <= now:
        row.window_start, row.count = now, 0
    row.count += 1
    return Verdict(row.count <= limit, row.count == limit + 1)


def prune(session: Session, *, now: dt.datetime, older_than: dt.timedelta = dt.timedelta(days=1)) -> None:
    session.execute(delete(InboundLimit).where(InboundLimit.window_start < now - older_than))
