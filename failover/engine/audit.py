"""The tamper-evident audit log: an append-only hash chain, keyed, and anchored outside the database.

**Chain.** Each event's hash is an HMAC-SHA256, under ``FAILOVER_AUDIT_KEY``,
of its own fields and the previous event's hash; events are numbered 1, 2,
3... without gaps. ``audit_head`` holds the tip; appenders lock it (``SELECT
... FOR UPDATE``; SQLite serialises writers anyway), so two processes can never
fork the chain. An edited row no longer matches its hash, a removed row leaves
a gap, reordered rows break the ``prev_hash`` links, and since the key never
enters the database, whoever can write to it cannot recompute the hashes of a
rewritten event either: ``verify`` names the first event where any of this shows.

**Key.** Sessions carry it (``session.info["audit_key"]``, set by the Runtime);
the head records only its id, a one-way fingerprint, so a process started with
another key is refused instead of forking the chain into two keys.

**Carry-over.** Chains written before there was a key hold plain SHA-256
hashes. The first keyed write appends ``audit.keyed``, which records how many
events the old chain had and its head, and is itself keyed; ``keyed_from``
points at it. Rewriting any older event now breaks the link into that event.

**Anchors.** What the key cannot prevent: dropping the newest events and moving
the head back (everything left is genuine). So beat writes signed
:class:`Checkpoint` s (count, head hash, time) where the database's writer
cannot change them (the log, files, e-mail; see :mod:`failover.anchors`), and
:func:`check_anchors` compares the chain with them: fewer events than a
checkpoint saw is a truncation, another hash at its position a rewrite. The
newest checkpoint also lets the console verify only the events after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.errors import ConfigError
from failover.models import AuditCheckpoint, AuditEvent, AuditHead

GENESIS = "0" * 64
KEYED = "audit.keyed"
CHECKPOINT_KIND = "failover.audit.checkpoint"


@dataclass(frozen=True)
class AuditKey:
    """FAILOVER_AUDIT_KEY: signs the chain and the checkpoints. Its repr never shows the secret."""

    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return hmac.new(self.secret, b"failover audit key id", hashlib.sha256).hexdigest()[:16]

    def chain(self, canonical: bytes) -> str:
        return hmac.new(self.secret, b"chain\n" + canonical, hashlib.sha256).hexdigest()

    def sign(self, canonical: bytes) -> str:
        return hmac.new(self.secret, b"checkpoint\n" + canonical, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One event to append; ``details`` must be JSON-serialisable and free of contact data."""

    action: str
    actor: str
    target_type: str | None = None
    target_id: str | int | None = None
    incident_id: int | None = None
    details: dict[str, Any] | None = None


def key_of(session: Session) -> AuditKey:
    key = session.info.get("audit_key")
    if not isinstance(key, AuditKey):
        raise ConfigError("this database session has no audit key (FAILOVER_AUDIT_KEY): it cannot write the audit log")
    return key


def record(session: Session, entry: Entry | None = None, /, **fields: Any) -> None:
    """Append one event in the caller's transaction."""
    record_many(session, [entry or Entry(**fields)])


def record_many(session: Session, entries: Sequence[Entry]) -> None:
    """Append several events in the caller's transaction, under one lock of the head."""
    if not entries:
        return
    key = key_of(session)
    head = _locked_head(session)
    _append(session, head, key, [*_keyed_from_now(head, key), *entries])


def start_keyed(session: Session) -> bool:
    """Carry an unkeyed chain over to the key now (``failover init``); True if this call did it."""
    key = key_of(session)
    head = _locked_head(session)
    if head.key_id is not None:
        check_key(head, key)
        return False
    _append(session, head, key, _keyed_from_now(head, key))
    return True


def _locked_head(session: Session) -> AuditHead:
    # The migration seeds this row; locking it serialises appenders across processes.
    return session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()


def _append(session: Session, head: AuditHead, key: AuditKey, entries: Sequence[Entry]) -> None:
    if not entries:
        session.flush()
        return
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
        row["hash"] = prev = key.chain(canonical(row))
        rows.append(row)
    # Core, not the ORM's bulk insert: the same statement for a fraction of the CPU (a row per delivery).
    # Pending ORM rows the events may refer to (an incident just added) are flushed first, as autoflush would.
    session.flush()
    session.connection().execute(insert(AuditEvent.__table__), rows)
    head.seq, head.hash = seq, prev
    session.flush()


def _keyed_from_now(head: AuditHead, key: AuditKey) -> list[Entry]:
    """Before the first keyed event: mark the head, and carry an old unkeyed chain over."""
    if head.key_id is not None:
        check_key(head, key)
        return []
    head.key_id, head.keyed_from = key.id, head.seq + 1
    if head.seq == 0:
        return []
    return [
        Entry(
            action=KEYED,
            actor="failover",
            details={"legacy_events": head.seq, "legacy_head": head.hash, "key_id": key.id},
        )
    ]


def check_key(head: AuditHead, key: AuditKey) -> None:
    if head.key_id != key.id:
        raise ConfigError(
            f"the audit chain is signed with another FAILOVER_AUDIT_KEY (key id {head.key_id}); this process has "
            f"key id {key.id}: every process must use the same key"
        )


def canonical(row: dict[str, Any]) -> bytes:
    """The canonical JSON of an event's fields and the previous hash: what its hash covers."""
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
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def legacy_hash(data: bytes) -> str:
    """How chains were hashed before the key: plain SHA-256 (anyone can recompute it)."""
    return hashlib.sha256(data).hexdigest()


# -- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str = ""
    # What was verified: the chain up to event ``seq`` with hash ``head``, starting after event ``since``.
    seq: int = 0
    head: str = GENESIS
    since: int = 0

    def __str__(self) -> str:
        if self.ok:
            after = f" after the checkpoint at event {self.since}" if self.since else ""
            return f"audit chain intact: {self.checked} events verified{after}"
        where = f" at event {self.bad_id}" if self.bad_id is not None else ""
        return f"audit chain broken{where}: {self.reason}"


def verify(session: Session, *, incremental: bool = False, batch: int = 5000) -> Verdict:
    """Walk the chain in id order up to the head; report the first event that does not fit.

    ``incremental`` starts at the newest valid checkpoint in the database
    instead of the first event: the console does that on every page view; the
    checkpoints themselves were each written after verifying up to them. The
    head is read first: every event up to ``head.seq`` was committed with (or
    before) it, so events appended while we walk cannot look like damage.
    """
    key = key_of(session)
    head = session.get(AuditHead, 1)
    if head is None or (head.seq == 0 and head.key_id in (None, key.id)):
        return Verdict(True, 0)
    end = head.seq
    if head.key_id is None:
        return Verdict(
            False,
            0,
            1,
            f"the chain's {end} events are not signed with FAILOVER_AUDIT_KEY: `failover init` carries "
            "an old chain over (or the events were rewritten without the key)",
        )
    if head.key_id != key.id:
        return Verdict(False, 0, None, f"the chain is signed with another key (id {head.key_id}, this one is {key.id})")
    keyed_from = head.keyed_from
    if keyed_from is None or not 1 <= keyed_from <= end + 1:
        return Verdict(False, 0, None, f"the audit head is damaged (keyed_from={keyed_from})")
    start = latest_checkpoint(session, key) if incremental else None
    if start is not None and start.seq > end:
        return Verdict(False, 0, end + 1, truncation(start, end))
    return _walk(session, key, head, keyed_from, start, batch)


def _walk(
    session: Session, key: AuditKey, head: AuditHead, keyed_from: int, start: Checkpoint | None, batch: int
) -> Verdict:
    end = head.seq
    first = start.seq if start is not None and start.seq > 0 else 1
    since = first if start is not None and start.seq > 0 else 0
    expected_id, prev = first, (GENESIS if first == 1 else None)
    checked = 0
    for event in _in_order(session, batch, first - 1, end):
        if event.id != expected_id:
            return Verdict(False, checked, expected_id, f"event {expected_id} is missing (next is {event.id})")
        if prev is not None and event.prev_hash != prev:
            return Verdict(False, checked, event.id, "does not link to the event before it")
        problem = _hash_problem(event, key, keyed=event.id >= keyed_from)
        if problem is None and event.id == keyed_from and keyed_from > 1:
            details = event.details or {}
            if event.action != KEYED or details.get("legacy_events") != keyed_from - 1:
                problem = "the first keyed event is not the carry-over of the old chain (audit.keyed)"
        if problem is None and start is not None and event.id == start.seq and event.hash != start.hash:
            problem = f"its hash is not the one the checkpoint of {iso(start.at)} recorded (the chain was rewritten)"
        if problem:
            return Verdict(False, checked, event.id, problem)
        prev = event.hash
        expected_id += 1
        checked += 1
    if expected_id - 1 != end or (prev is not None and prev != head.hash):
        return Verdict(False, checked, expected_id, f"chain ends early: the head records {end} events")
    if start is not None and start.seq > 0:
        checked -= 1  # the checkpoint's own event was verified before
    return Verdict(True, checked, seq=end, head=head.hash, since=since)


def _hash_problem(event: AuditEvent, key: AuditKey, *, keyed: bool) -> str | None:
    data = canonical(_as_row(event))
    if keyed:
        if hmac.compare_digest(key.chain(data), event.hash):
            return None
        if legacy_hash(data) == event.hash:
            return "rewritten without the audit key: its hash is a plain SHA-256, not signed with FAILOVER_AUDIT_KEY"
        return "contents do not match its hash (edited)"
    return None if legacy_hash(data) == event.hash else "contents do not match its hash (edited)"


def _in_order(session: Session, batch: int, after: int, end: int) -> Iterator[AuditEvent]:
    last = after
    while True:
        query = select(AuditEvent).where(AuditEvent.id > last, AuditEvent.id <= end)
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


# -- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The chain as it was verified at ``at``: ``seq`` events, the last with hash ``hash``; signed."""

    seq: int
    hash: str
    at: dt.datetime
    key_id: str
    keyed_from: int
    signature: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "kind": CHECKPOINT_KIND,
            "seq": self.seq,
            "hash": self.hash,
            "at": iso(self.at),
            "key_id": self.key_id,
            "keyed_from": self.keyed_from,
        }

    def canonical(self) -> bytes:
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: AuditKey) -> Checkpoint:
        return Checkpoint(self.seq, self.hash, self.at, self.key_id, self.keyed_from, key.sign(self.canonical()))

    def verifies(self, key: AuditKey) -> bool:
        return self.key_id == key.id and hmac.compare_digest(key.sign(self.canonical()), self.signature)

    def as_json(self) -> dict[str, Any]:
        return {**self.payload(), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Raises ValueError when ``data`` is not a checkpoint (its signature is checked separately)."""
        if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
            raise ValueError("not a failover audit checkpoint")
        try:
            at = dt.datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
            fields = (int(data["seq"]), str(data["hash"]), str(data["key_id"]), int(data["keyed_from"]))
            signature = str(data["signature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"incomplete checkpoint: {exc}") from None
        if at.tzinfo is None:
            raise ValueError("the checkpoint's time has no time zone")
        seq, hash_, key_id, keyed_from = fields
        return cls(seq, hash_, at, key_id, keyed_from, signature)


def save_checkpoint(session: Session, verdict: Verdict, *, now: dt.datetime) -> Checkpoint | None:
    """Record a signed checkpoint of what ``verdict`` verified; None when it holds nothing new."""
    key = key_of(session)
    head = session.get(AuditHead, 1)
    if not verdict.ok or verdict.seq == 0 or head is None or head.keyed_from is None:
        return None
    newest = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()
    if newest is not None and newest.seq >= verdict.seq:
        return None
    checkpoint = Checkpoint(verdict.seq, verdict.head, now, key.id, head.keyed_from).signed(key)
    session.add(
        AuditCheckpoint(
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            at=checkpoint.at,
            key_id=checkpoint.key_id,
            keyed_from=checkpoint.keyed_from,
            signature=checkpoint.signature,
        )
    )
    session.flush()
    return checkpoint


def latest_checkpoint(session: Session, key: AuditKey | None = None) -> Checkpoint | None:
    """The newest checkpoint in the database that this key signed (a forged or foreign row is skipped)."""
    key = key or key_of(session)
    rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(20))
    for row in rows:
        checkpoint = Checkpoint(row.seq, row.hash, row.at, row.key_id, row.keyed_from, row.signature)
        if checkpoint.verifies(key):
            return checkpoint
    return None


def truncation(checkpoint: Checkpoint, seq: int) -> str:
    dropped = checkpoint.seq - seq
    return (
        f"truncated: the checkpoint of {iso(checkpoint.at)} recorded {checkpoint.seq} events, the chain now holds "
        f"{seq}: the newest {dropped} were dropped and the head moved back"
    )


def check_anchors(session: Session, checkpoints: Iterable[Checkpoint]) -> list[str]:
    """Compare the chain with checkpoints kept outside the database; each problem as one sentence."""
    key = key_of(session)
    head = session.get(AuditHead, 1)
    seq = head.seq if head is not None else 0
    problems = []
    for checkpoint in checkpoints:
        if not checkpoint.verifies(key):
            problems.append(f"the checkpoint of {iso(checkpoint.at)} is not signed with this FAILOVER_AUDIT_KEY")
            continue
        if checkpoint.seq > seq:
            problems.append(truncation(checkpoint, seq))
            continue
        event = session.get(AuditEvent, checkpoint.seq)
        if event is None:
            problems.append(f"event {checkpoint.seq}, which the checkpoint of {iso(checkpoint.at)} saw, is missing")
        elif event.hash != checkpoint.hash:
            problems.append(
                f"event {checkpoint.seq} is not the one the checkpoint of {iso(checkpoint.at)} saw: "
                "the chain was rewritten"
            )
    return problems


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
