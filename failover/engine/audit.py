"""The tamper-evident audit log: an append-only hash chain.

Each event's hash covers its own fields and the previous event's hash, and
events are numbered 1, 2, 3... without gaps. ``audit_head`` holds the tip;
appenders lock it (``SELECT ... FOR UPDATE``; SQLite serialises writers
anyway), so two processes can never fork the chain. An edited row no longer
matches its hash, a removed row leaves a gap (or a head that points past the
end) and reordered rows break the ``prev_hash`` links; ``verify`` names the
first row where any of this shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.models import AuditEvent, AuditHead

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One event to append; ``details`` must be JSON-serialisable and free of contact data."""

    action: str
    actor: str
    target_type: str | None = None
    target_id: str | int | None = None
    incident_id: int | None = None
    details: dict[str, Any] | None = None


def record(session: Session, entry: Entry | None = None, /, **fields: Any) -> None:
    """Append one event in the caller's transaction."""
    record_many(session, [entry or Entry(**fields)])


def record_many(session: Session, entries: Sequence[Entry]) -> None:
    """Append several events in the caller's transaction, under one lock of the head."""
    if not entries:
        return
    # The migration seeds this row; locking it serialises appenders across processes.
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    now = utcnow()
    rows = []
    seq, prev = head.seq, head.hash
    for entry in entries:
        seq += 1
        row = {
            "id": seq,
            "at": now,
            "actor": entry.actor,
            "action": entry.action,
            "target_type": entry.target_type,
            "target_id": None if entry.target_id is None else str(entry.target_id),
            "incident_id": entry.incident_id,
            "details": entry.details or {},
            "prev_hash": prev,
        }
        row["hash"] = prev = chain_hash(row)
        rows.append(row)
    session.execute(insert(AuditEvent), rows)
    head.seq, head.hash = seq, prev
    session.flush()


def chain_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an event's fields and the previous hash."""
    at = row["at"]
    if isinstance(at, dt.datetime):
        at = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = {
        "id": row["id"],
        "at": at,
        "actor": row["actor"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "incident_id": row["incident_id"],
        "details": row["details"],
        "prev_hash": row["prev_hash"],
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} events verified"
        return f"audit chain broken at event {self.bad_id}: {self.reason}"


def verify(session: Session, batch: int = 5000) -> Verdict:
    """Walk the chain in id order up to the head; report the first event that does not fit.

    The head is read first: every event up to ``head.seq`` was committed with
    (or before) it, so events appended while we walk cannot look like damage.
    """
    head = session.get(AuditHead, 1)
    end = head.seq if head is not None else None
    expected_id, prev = 1, GENESIS
    checked = 0
    for event in _in_order(session, batch, end):
        if event.id != expected_id:
            return Verdict(False, checked, expected_id, f"event {expected_id} is missing (next is {event.id})")
        if event.prev_hash != prev:
            return Verdict(False, checked, event.id, "does not link to the event before it")
        if chain_hash(_as_row(event)) != event.hash:
            return Verdict(False, checked, event.id, "contents do not match its hash (edited)")
        prev = event.hash
        expected_id += 1
        checked += 1
    if head is not None and (head.seq != checked or head.hash != prev):
        return Verdict(False, checked, checked + 1, f"chain ends early: the head records {head.seq} events")
    return Verdict(True, checked)


def _in_order(session: Session, batch: int, end: int | None) -> Iterator[AuditEvent]:
    last = 0
    while True:
        query = select(AuditEvent).where(AuditEvent.id > last)
        if end is not None:
            query = query.where(AuditEvent.id <= end)
        rows = list(session.scalars(query.order_by(AuditEvent.id).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def _as_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "incident_id": event.incident_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
