"""People snapshots: a source's records become the roster in one transaction, with its audit event.

``apply`` takes what one source says now (all of it, or a delta), merges it
with the other sources per person (domain.people), diffs the result against
the roster and - unless the diff is refused (more removals than
``max_removal`` without an admin's accept) or a dry run - writes the people,
their group memberships, the snapshot row and the audit event together. A
failed sync (``record_failure``) changes nothing but the source's status: the
last good roster stays in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from failover.domain.people import PRECEDENCE, PeopleConfig, Record, diff, memberships, merge, refusal
from failover.engine import audit, gauges
from failover.engine.directory import LOOKUP_CHUNK, record_of
from failover.engine.rows import insert_once
from failover.models_people import PeopleSnapshot, PeopleSource, PersonGroup, PersonRecord, PersonRow

ROSTER_LOCK = "roster"  # the people_sources row every snapshot locks first: one snapshot at a time
RULES = "rules"  # the people_sources row that remembers which rules the memberships follow


@dataclass
class Outcome:
    """What a sync or import did (or, dry or refused, would do)."""

    source: str
    status: str  # applied | unchanged | refused | failed | dry_run
    counts: dict[str, int] = field(default_factory=dict)
    sample: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reason: str | None = None
    snapshot_id: int | None = None
    total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "counts": self.counts,
            "sample": self.sample,
            "reason": self.reason,
            "snapshot_id": self.snapshot_id,
            "total": self.total,
        }


@gauges.register
def snapshot_age(session: Session, now: dt.datetime) -> list[Metric]:
    """failover_people_snapshot_age_seconds: since the last good sync from Entra ID (none: no graph source yet).

    deploy/prometheus-alerts.yml alerts over two days, people.yaml's default stale_after."""
    last_ok = session.scalar(select(PeopleSource.last_ok_at).where(PeopleSource.source == "graph"))
    if last_ok is None:
        return []
    if last_ok.tzinfo is None:
        last_ok = last_ok.replace(tzinfo=dt.UTC)
    age = GaugeMetricFamily(
        "failover_people_snapshot_age_seconds", "Seconds since people were last synced from Entra ID (Graph users)."
    )
    age.add_metric([], max(0.0, (now - last_ok).total_seconds()))
    return [age]


def _source_row(session: Session, source: str, *, lock: bool = False) -> PeopleSource:
    insert_once(session, PeopleSource, {"source": source}, ["source"])
    query = select(PeopleSource).where(PeopleSource.source == source)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one()


def active_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(PersonRow).where(PersonRow.removed_at.is_(None))) or 0)


def source_records(session: Session, source: str) -> dict[str, Record]:
    return {
        person_id: Record.from_dict(data)
        for person_id, data in session.execute(
            select(PersonRecord.person_id, PersonRecord.data).where(PersonRecord.source == source)
        )
    }


def apply(
    session: Session,
    *,
    source: str,
    config: PeopleConfig,
    now: dt.datetime,
    actor: str,
    records: Mapping[str, Record] | None = None,
    changes: Mapping[str, Record | None] | None = None,
    kind: str = "full",
    accept: bool = False,
    dry_run: bool = False,
    check_removals: bool = True,
    delta_link: str | None = None,
    signature: str | None = None,
) -> Outcome:
    """Make ``records`` (everything ``source`` says) or ``changes`` (a delta; None = gone) the roster's view."""
    _source_row(session, ROSTER_LOCK, lock=True)
    state = _source_row(session, source, lock=True)
    old = source_records(session, source)
    if records is not None:
        wanted: dict[str, Record | None] = {pid: None for pid in old if pid not in records}
        wanted.update({pid: rec for pid, rec in records.items() if old.get(pid) != rec})
    else:
        wanted = {pid: rec for pid, rec in (changes or {}).items() if old.get(pid) != rec}
    before, after = _merged(session, source, wanted)
    outcome_diff = diff(before, after)
    active = active_count(session)
    outcome_diff.unchanged = active - len(outcome_diff.changed) - len(outcome_diff.removed)
    outcome = Outcome(source, "applied", outcome_diff.counts(), outcome_diff.sample())
    reason = refusal(outcome_diff, active=active, max_removal=config.safety.max_removal) if check_removals else None
    if reason is None and check_removals:
        reason = _empties_required(session, config, before, after)
    if dry_run:
        outcome.status, outcome.reason, outcome.total = "dry_run", reason, active
        return outcome
    if reason is not None and not accept:
        snapshot = _snapshot(session, source, kind, "refused", actor, now, outcome, reason, active)
        audit.record(
            session,
            action="people.sync_refused",
            actor=actor,
            target_type="people_snapshot",
            target_id=snapshot.id,
            details={"source": source, **outcome.counts, "reason": reason},
        )
        state.last_attempt_at, state.last_error = now, f"refused: {reason}"
        outcome.status, outcome.reason, outcome.snapshot_id, outcome.total = "refused", reason, snapshot.id, active
        return outcome
    _store_records(session, source, wanted)
    rules_changed = _rules_changed(session, config)
    if outcome_diff.empty and not rules_changed:
        outcome.status, outcome.total = "unchanged", active
    else:
        total = active + len(outcome_diff.added) - len(outcome_diff.removed)
        snapshot = _snapshot(session, source, kind, "applied", actor, now, outcome, None, total)
        _write_people(session, before, after, snapshot.id, now)
        touched = [r.id for r in outcome_diff.added] + [a.id for _, a in outcome_diff.changed]
        _regroup(session, config, None if rules_changed else touched)
        audit.record(
            session,
            action="people.snapshot",
            actor=actor,
            target_type="people_snapshot",
            target_id=snapshot.id,
            details={"source": source, "kind": kind, **outcome.counts, "total": total, "accepted": accept},
        )
        outcome.snapshot_id, outcome.total = snapshot.id, total
    state.last_ok_at = state.last_attempt_at = now
    state.last_error = None
    if delta_link is not None:
        state.delta_link = delta_link
    if signature is not None:
        state.signature = signature
    return outcome


def record_failure(session: Session, *, source: str, error: str, now: dt.datetime, actor: str, kind: str) -> int:
    """A sync that did not happen: recorded, audited, shown; the roster in force is untouched."""
    state = _source_row(session, source, lock=True)
    state.last_attempt_at, state.last_error = now, error[:1000]
    outcome = Outcome(source, "failed")
    snapshot = _snapshot(session, source, kind, "failed", actor, now, outcome, error[:1000], active_count(session))
    audit.record(
        session,
        action="people.sync_failed",
        actor=actor,
        target_type="people_snapshot",
        target_id=snapshot.id,
        details={"source": source, "error": error[:300]},
    )
    return snapshot.id


def forget_delta(session: Session, source: str) -> None:
    """Graph rejected the deltaLink (410): the next sync starts over with a full one."""
    _source_row(session, source, lock=True).delta_link = None


def _merged(
    session: Session, source: str, wanted: Mapping[str, Record | None]
) -> tuple[dict[str, Record], dict[str, Record | None]]:
    """(the roster's active view of each affected person, what it becomes with ``wanted`` for ``source``)."""
    before: dict[str, Record] = {}
    after: dict[str, Record | None] = {}
    ids = list(wanted)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        for row in session.scalars(select(PersonRow).where(PersonRow.id.in_(chunk), PersonRow.removed_at.is_(None))):
            before[row.id] = record_of(row)
        others: dict[str, dict[str, Record]] = {pid: {} for pid in chunk}
        for other, person_id, data in session.execute(
            select(PersonRecord.source, PersonRecord.person_id, PersonRecord.data).where(
                PersonRecord.person_id.in_(chunk), PersonRecord.source != source, PersonRecord.source.in_(PRECEDENCE)
            )
        ):
            others[person_id][other] = Record.from_dict(data)
        for person_id in chunk:
            views = dict(others[person_id])
            record = wanted[person_id]
            if record is not None:
                views[source] = record
            after[person_id] = merge(views)
    return before, after


def _store_records(session: Session, source: str, wanted: Mapping[str, Record | None]) -> None:
    ids = list(wanted)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        session.execute(delete(PersonRecord).where(PersonRecord.source == source, PersonRecord.person_id.in_(chunk)))
    rows = [{"source": source, "person_id": pid, "data": rec.as_dict()} for pid, rec in wanted.items() if rec]
    if rows:
        session.execute(insert(PersonRecord), rows)


def _row_values(record: Record, snapshot_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name or record.id,
        "phone": record.phone,
        "email": record.email,
        "department": record.department,
        "office_location": record.office_location,
        "job_title": record.job_title,
        "language": record.language,
        "listed_groups": list(record.groups),
        "snapshot_id": snapshot_id,
        "removed_at": None,
        "updated_at": now,
    }


def _write_people(
    session: Session,
    before: Mapping[str, Record],
    after: Mapping[str, Record | None],
    snapshot_id: int,
    now: dt.datetime,
) -> None:
    touched = [pid for pid in after if before.get(pid) != after[pid]]
    existing: set[str] = set()
    for start in range(0, len(touched), LOOKUP_CHUNK):
        chunk = touched[start : start + LOOKUP_CHUNK]
        existing.update(session.scalars(select(PersonRow.id).where(PersonRow.id.in_(chunk))))
    inserts, updates, removals = [], [], []
    for person_id in touched:
        record = after[person_id]
        if record is None:
            removals.append({"id": person_id, "removed_at": now, "snapshot_id": snapshot_id, "updated_at": now})
        elif person_id in existing:
            values = _row_values(record, snapshot_id, now)
            if before.get(person_id) is not None and before[person_id].phone != record.phone:
                values["phone_verified_at"] = values["phone_failed_at"] = None  # a new number is unproven
            updates.append(values)
        else:
            inserts.append(_row_values(record, snapshot_id, now))
    if inserts:
        session.execute(insert(PersonRow), inserts)
    if updates:
        session.execute(update(PersonRow), updates)
    if removals:
        session.execute(update(PersonRow), removals)


def _rules_changed(session: Session, config: PeopleConfig) -> bool:
    state = _source_row(session, RULES)
    signature = config.signature()
    if state.signature == signature:
        return False
    state.signature = signature
    return True


def _regroup(session: Session, config: PeopleConfig, ids: Iterable[str] | None) -> None:
    """Memberships (listed + rule groups) of ``ids``, or of every active person (the rules changed)."""
    if ids is None:
        session.execute(delete(PersonGroup))
        query = select(PersonRow).where(PersonRow.removed_at.is_(None)).execution_options(yield_per=2000)
        batch: list[dict[str, str]] = []
        for row in session.scalars(query):
            batch.extend(_member_rows(row, config))
            if len(batch) >= 5000:
                session.execute(insert(PersonGroup), batch)
                batch = []
        if batch:
            session.execute(insert(PersonGroup), batch)
        return
    wanted = list(ids)
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        session.execute(delete(PersonGroup).where(PersonGroup.person_id.in_(chunk)))
        rows = session.scalars(select(PersonRow).where(PersonRow.id.in_(chunk))).all()
        values = [value for row in rows for value in _member_rows(row, config)]
        if values:
            session.execute(insert(PersonGroup), values)


def _empties_required(
    session: Session, config: PeopleConfig, before: Mapping[str, Record], after: Mapping[str, Record | None]
) -> str | None:
    """Why this change would leave a ``required`` group with nobody in it; None when it would not."""
    required = [name for name, group in config.groups.items() if group.required]
    if not required:
        return None
    touched = [pid for pid in after if before.get(pid) != after[pid]]
    for name in required:
        current = int(
            session.scalar(
                select(func.count())
                .select_from(PersonGroup)
                .join(PersonRow, PersonRow.id == PersonGroup.person_id)
                .where(PersonGroup.group_name == name, PersonRow.removed_at.is_(None))
            )
            or 0
        )
        leaving = sum(1 for pid in touched if pid in before and name in memberships(before[pid], config))
        joining = sum(1 for pid in touched if (rec := after[pid]) is not None and name in memberships(rec, config))
        if current > 0 and current - leaving + joining <= 0:
            return f"it would leave the required group '{name}' empty"
    return None


def _member_rows(row: PersonRow, config: PeopleConfig) -> list[dict[str, Any]]:
    groups = memberships(record_of(row), config)
    return [{"person_id": row.id, "group_name": g, "position": n} for n, g in enumerate(groups)]


def _snapshot(
    session: Session,
    source: str,
    kind: str,
    status: str,
    actor: str,
    now: dt.datetime,
    outcome: Outcome,
    error: str | None,
    total: int,
) -> PeopleSnapshot:
    counts = outcome.counts or {}
    snapshot = PeopleSnapshot(
        source=source,
        kind=kind,
        status=status,
        at=now,
        actor=actor,
        added=counts.get("added", 0),
        changed=counts.get("changed", 0),
        removed=counts.get("removed", 0),
        unchanged=counts.get("unchanged", 0),
        total=total,
        error=error,
        detail={"sample": outcome.sample},
    )
    session.add(snapshot)
    session.flush()
    return snapshot


RAW = "graph:raw"  # person_records of this source hold Graph's last full view of each user, by object id


def raw_users(session: Session, object_ids: Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """Graph's last full view of these users (all when ``object_ids`` is None)."""
    query = select(PersonRecord.person_id, PersonRecord.data).where(PersonRecord.source == RAW)
    if object_ids is None:
        return {oid: data for oid, data in session.execute(query)}
    found: dict[str, dict[str, Any]] = {}
    wanted = list(object_ids)
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        found.update({oid: data for oid, data in session.execute(query.where(PersonRecord.person_id.in_(chunk)))})
    return found


def store_raw_users(session: Session, users: Mapping[str, dict[str, Any] | None], *, full: bool) -> None:
    if full:
        session.execute(delete(PersonRecord).where(PersonRecord.source == RAW))
    _store_records_data(session, RAW, users, replace_all=full)


def _store_records_data(
    session: Session, source: str, data: Mapping[str, dict[str, Any] | None], *, replace_all: bool
) -> None:
    ids = list(data)
    if not replace_all:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            session.execute(
                delete(PersonRecord).where(PersonRecord.source == source, PersonRecord.person_id.in_(chunk))
            )
    rows = [{"source": source, "person_id": key, "data": value} for key, value in data.items() if value is not None]
    for start in range(0, len(rows), 5000):
        session.execute(insert(PersonRecord), rows[start : start + 5000])
