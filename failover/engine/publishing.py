"""Publishing the status page's snapshot to each target: the relay of the page's outbox.

Every change bumps ``status_revision`` in its own transaction (statusrows.bump).
``publish_due`` (beat runs it every few seconds, ``failover status publish``
by hand) finds the targets that hold an older revision, or whose heartbeat is
due, leases each (two workers never write one target at once), renders the
snapshot once and writes it. A failure is counted, shown on the dashboard and
retried with backoff; it never touches the SMS or mail ledger.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from failover.channels.s3_publish import PublishError
from failover.db import Database
from failover.engine import audit
from failover.models import StatusRevision, StatusTarget
from failover.privacy import scrub

log = logging.getLogger(__name__)
LEASE = dt.timedelta(minutes=2)
MAX_BACKOFF = dt.timedelta(minutes=5)


class Publisher(Protocol):
    def publish(self, files: Sequence[Any]) -> dict[str, int]: ...


@dataclass(frozen=True)
class Outcome:
    target: str
    ok: bool
    revision: int
    latency_ms: int | None = None
    error: str | None = None
    counts: Mapping[str, int] | None = None


def revision(session: Session) -> tuple[int, dt.datetime | None]:
    row = session.get(StatusRevision, 1)
    return (row.revision, row.changed_at) if row else (0, None)


def publish_due(
    database: Database,
    publishers: Mapping[str, Callable[[], Publisher]],
    render: Callable[[Session], list[Any]],
    *,
    now: Callable[[], dt.datetime],
    heartbeat: dt.timedelta,
    force: bool = False,
) -> list[Outcome]:
    """Publish to every target that is behind (or due its heartbeat, or all with ``force``).

    ``publishers`` maps each target to a factory: a client is built only for a target that is due (a tick
    that finds nothing to do costs two queries), and fresh each time, so rotated credentials are used.
    """
    if not publishers:
        return []
    started = now()
    with database.transaction() as session:
        current, _ = revision(session)
        claimed = [name for name in publishers if _claim(session, name, current, started, heartbeat, force)]
    if not claimed:
        return []
    with database.reading() as session:
        rendered_revision, changed_at = revision(session)
        files = render(session)
    outcomes = []
    for name in claimed:
        try:
            counts = publishers[name]().publish(files)
        except PublishError as exc:
            outcomes.append(_failed(database, name, rendered_revision, str(exc), now()))
        else:
            outcomes.append(_done(database, name, rendered_revision, changed_at, counts, now()))
    return outcomes


def _claim(session: Session, name: str, current: int, now: dt.datetime, heartbeat: dt.timedelta, force: bool) -> bool:
    row = session.get(StatusTarget, name)
    if row is None:
        row = StatusTarget(name=name, revision=0, failures=0, failed_total=0)
        session.add(row)
        session.flush()
    if row.lease_until is not None and row.lease_until > now:
        return False
    if not force:
        behind = row.revision < current
        heartbeat_due = row.published_at is None or row.published_at <= now - heartbeat
        if not (behind or heartbeat_due):
            return False
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return False
    taken = session.execute(
        update(StatusTarget)
        .where(
            StatusTarget.name == name,
            or_(StatusTarget.lease_until.is_(None), StatusTarget.lease_until <= now),
        )
        .values(lease_until=now + LEASE)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def _done(
    database: Database,
    name: str,
    rendered: int,
    changed_at: dt.datetime | None,
    counts: Mapping[str, int],
    at: dt.datetime,
) -> Outcome:
    with database.transaction() as session:
        row = session.get(StatusTarget, name, with_for_update=True)
        assert row is not None
        latency = None
        if rendered > row.revision and changed_at is not None:
            latency = max(0, int((at - changed_at).total_seconds() * 1000))
            row.latency_ms = latency
        if row.failures:
            audit.record(
                session,
                action="status.publish_recovered",
                actor="publisher",
                target_type="status_target",
                target_id=name[:64],
                details={"after_failures": row.failures},
            )
        row.revision = max(row.revision, rendered)
        row.published_at, row.failures, row.last_error, row.next_attempt_at, row.lease_until = at, 0, None, None, None
    log.info("status page revision %d published to %s (%s)", rendered, name, dict(counts))
    return Outcome(name, True, rendered, latency, counts=counts)


def _failed(database: Database, name: str, rendered: int, error: str, at: dt.datetime) -> Outcome:
    error = scrub(error, 300)
    with database.transaction() as session:
        row = session.get(StatusTarget, name, with_for_update=True)
        assert row is not None
        row.failures += 1
        row.failed_total += 1
        row.last_error = error
        backoff = min(dt.timedelta(seconds=5 * 2 ** min(row.failures, 10)), MAX_BACKOFF)
        row.next_attempt_at, row.lease_until = at + backoff, None
        if row.failures == 1:  # the first of a run is audited; the count and the last error are on the dashboard
            audit.record(
                session,
                action="status.publish_failed",
                actor="publisher",
                target_type="status_target",
                target_id=name[:64],
                details={"error": error},
            )
    log.warning("status page not published to %s (revision %d kept for a retry): %s", name, rendered, error)
    return Outcome(name, False, rendered, error=error)


@dataclass(frozen=True)
class TargetState:
    name: str
    revision: int
    current: int
    published_at: dt.datetime | None
    latency_ms: int | None
    failures: int
    failed_total: int
    last_error: str | None

    @property
    def behind(self) -> bool:
        return self.revision < self.current


def states(session: Session, names: Sequence[str]) -> list[TargetState]:
    """For the dashboard: each configured target, how far behind and how it last went."""
    current, _ = revision(session)
    rows = {r.name: r for r in session.scalars(select(StatusTarget).where(StatusTarget.name.in_(list(names))))}
    out = []
    for name in names:
        row = rows.get(name)
        out.append(
            TargetState(
                name,
                row.revision if row else 0,
                current,
                row.published_at if row else None,
                row.latency_ms if row else None,
                row.failures if row else 0,
                row.failed_total if row else 0,
                row.last_error if row else None,
            )
        )
    return out
