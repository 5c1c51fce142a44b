"""Scheduled drills: start each due (schedule, slot) once, as a drill activation of its runbook.

Beat calls this every minute (``failover.tasks.scheduled_drills``); the slot
row (``DrillRun``) is written in the same transaction as the activation, so a
slot runs at most once whatever runs twice. A drill that cannot start (an
unknown runbook, a template that no longer renders) is recorded as failed and
audited, once, rather than retried each minute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain.drills import Schedule
from failover.domain.runbooks import Catalog
from failover.engine import activation, audit
from failover.engine.activation import Accepted
from failover.models import DrillRun

ACTOR = "drill-schedule"


def taken(session: Session, schedule: Schedule, slot: dt.datetime) -> bool:
    return (
        session.scalar(select(DrillRun.id).where(DrillRun.schedule == schedule.name, DrillRun.slot == slot)) is not None
    )


def start(
    session: Session, catalog: Catalog, schedule: Schedule, slot: dt.datetime, *, opted_out: Collection[str] = ()
) -> Accepted | None:
    """Start the drill of ``slot`` unless it ran already; None when it did."""
    if taken(session, schedule, slot):
        return None
    run = DrillRun(schedule=schedule.name, slot=slot, runbook_id=schedule.runbook, outcome="started")
    session.add(run)
    session.flush()  # a second beat racing us fails here, on the unique key, before anything is sent
    accepted = activation.activate(
        session,
        catalog,
        runbook_id=schedule.runbook,
        reason=f"{schedule.reason} (schedule {schedule.name}, {slot:%Y-%m-%d %H:%M} UTC)",
        actor=ACTOR,
        drill=True,
        message=schedule.message,
        source="schedule",
        opted_out=opted_out,
    )
    run.activation_id = accepted.activation_id
    return accepted


def failed(session: Session, schedule: Schedule, slot: dt.datetime, error: str) -> None:
    """Record (and audit) a slot whose drill could not start, so it is not tried again each minute."""
    if taken(session, schedule, slot):
        return
    session.add(
        DrillRun(schedule=schedule.name, slot=slot, runbook_id=schedule.runbook, outcome="failed", detail=error)
    )
    audit.record(
        session,
        action="drill.failed",
        actor=ACTOR,
        target_type="drill",
        target_id=schedule.name,
        details={"runbook": schedule.runbook, "slot": slot.isoformat(), "error": error[:500]},
    )


def last_runs(session: Session, limit: int = 20) -> list[DrillRun]:
    return list(session.scalars(select(DrillRun).order_by(DrillRun.slot.desc(), DrillRun.id.desc()).limit(limit)))
