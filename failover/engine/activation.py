"""Activation: a runbook phase turned into ledger rows, all in one transaction.

``activate`` writes the incident (if new), the activation, one ledger row per
recipient and channel, the dispatch batches (the transactional outbox) and the
audit event together, and returns the batch ids for the relay to publish
after commit. Nothing is sent from here, so a broker that is down when the
operator presses the button only delays delivery.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain import planning
from failover.domain.planning import ActivationInfo, IncidentInfo
from failover.domain.runbooks import Catalog, Runbook
from failover.engine import audit, optouts, timers, tokens
from failover.engine.ledger import write_ledger
from failover.errors import ApprovalError, Conflict, InvalidRequest, NotFound
from failover.models import (
    Activation,
    ActivationState,
    Incident,
    IncidentState,
)

# Ledger rows per broker task. SMS rows are sent concurrently inside the task;
# an email batch is one SendGrid request of up to 1000 personalizations.
AUTOMATIC_ACTORS = frozenset({"watcher"})
TITLE_MAX = 300


@dataclass(frozen=True)
class Accepted:
    """What an accepted (or already existing) activation amounts to."""

    activation_id: int
    incident_id: int
    state: str
    batch_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    created: bool = True


def incident_info(incident: Incident) -> IncidentInfo:
    return IncidentInfo(
        id=incident.id,
        title=incident.title,
        services=tuple(incident.services or ()),
        ms_issue_id=(incident.ms_issue_ids or [None])[0],
        impact=incident.impact,
        started_at=incident.opened_at,
    )


def open_incident(
    session: Session,
    *,
    title: str,
    services: Iterable[str],
    source: str,
    actor: str,
    drill: bool = False,
    ms_issue_ids: Iterable[str] = (),
    impact: str | None = None,
) -> Incident:
    incident = Incident(
        title=title,
        services=list(services),
        source=source,
        drill=drill,
        ms_issue_ids=list(ms_issue_ids),
        impact=impact,
        opened_by=actor,
        opened_at=utcnow(),
        state=IncidentState.CONFIRMED,
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        action="incident.opened",
        actor=actor,
        target_type="incident",
        target_id=incident.id,
        incident_id=incident.id,
        details={
            "title": title,
            "services": incident.services,
            "source": source,
            "drill": drill,
            "ms_issue_ids": incident.ms_issue_ids,
        },
    )
    return incident


def activate(
    session: Session,
    catalog: Catalog,
    *,
    runbook_id: str,
    reason: str,
    actor: str,
    incident_id: int | None = None,
    services: Iterable[str] = (),
    drill: bool = False,
    override: str | None = None,
    message: str | None = None,
    source: str = "manual",
    opted_out: Collection[str] = (),
) -> Accepted:
    """Accept an activation of a runbook's ``steps``; see the module docstring.

    ``reason`` is the internal note (audit log and console only); ``message`` is
    the text templates show recipients as ``activation.message``.

    Activating a runbook a second time for the same incident returns the
    existing activation (``created=False``): the database's unique key makes
    this hold even when two watchers race.
    """
    runbook = _runbook(catalog, runbook_id)
    reason = note(reason)
    override = optional_text(override)
    message = optional_text(message)
    if drill and not runbook.drill_group:
        raise InvalidRequest(f"runbook '{runbook.id}' has no drill_group, so it cannot be drilled")
    if incident_id is None:
        incident = open_incident(
            session,
            title=incident_title([runbook]),
            services=tuple(services) or runbook.trigger.services,
            source=source,
            actor=actor,
            drill=drill,
        )
    else:
        incident = _incident(session, incident_id)
        if incident.state != IncidentState.CONFIRMED:
            raise Conflict(f"incident {incident.id} is {incident.state}; open a new one")
        drill = drill or incident.drill
    needs_approval = runbook.trigger.activation == "approval" or (
        actor in AUTOMATIC_ACTORS and runbook.trigger.activation == "manual"
    )
    activation = Activation(
        incident_id=incident.id,
        runbook_id=runbook.id,
        phase="steps",
        state=ActivationState.PENDING_APPROVAL if needs_approval else ActivationState.QUEUED,
        reason=reason,
        message=message,
        requested_by=actor,
        drill=drill,
        override=override,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(activation)
            session.flush()
    except IntegrityError:
        existing = session.scalars(
            select(Activation).where(
                Activation.incident_id == incident.id,
                Activation.runbook_id == runbook.id,
                Activation.phase == "steps",
            )
        ).one()
        return Accepted(existing.id, incident.id, existing.state, created=False)
    if needs_approval:
        audit.record(
            session,
            action="activation.awaiting_approval",
            actor=actor,
            target_type="activation",
            target_id=activation.id,
            incident_id=incident.id,
            details={"runbook": runbook.id, "reason": reason, "message": message, "drill": drill},
        )
        return Accepted(activation.id, incident.id, activation.state)
    return _materialise(session, catalog, runbook, incident, activation, actor, opted_out)


def approve(
    session: Session, catalog: Catalog, *, activation_id: int, actor: str, opted_out: Collection[str] = ()
) -> Accepted:
    """A second operator releases an activation that awaits approval."""
    activation = _activation(session, activation_id, lock=True)
    if activation.state != ActivationState.PENDING_APPROVAL:
        raise ApprovalError(f"activation {activation.id} is {activation.state}, not awaiting approval")
    # Four eyes means two people: a token counts as its owner, on either side (see engine/tokens.py).
    approver = tokens.person(session, actor)
    if approver is None:
        raise ApprovalError("this API token belongs to nobody, so it cannot approve; use a token of a person")
    if approver == tokens.person(session, activation.requested_by):
        raise ApprovalError("you requested this activation; another operator must approve it")
    runbook = _runbook(catalog, activation.runbook_id)
    activation.approved_by = actor
    return _materialise(session, catalog, runbook, activation.incident, activation, actor, opted_out)


def cancel(session: Session, *, activation_id: int, actor: str, reason: str = "") -> None:
    """Withdraw an activation that has not been released yet."""
    activation = _activation(session, activation_id, lock=True)
    if activation.state != ActivationState.PENDING_APPROVAL:
        raise Conflict(f"activation {activation.id} is {activation.state}; only pending ones can be cancelled")
    activation.state = ActivationState.CANCELLED
    activation.completed_at = utcnow()
    audit.record(
        session,
        action="activation.cancelled",
        actor=actor,
        target_type="activation",
        target_id=activation.id,
        incident_id=activation.incident_id,
        details={"reason": reason},
    )


def cancel_pending(session: Session, *, incident: Incident, actor: str) -> None:
    """Withdraw the incident's activations still awaiting approval (it is over)."""
    for activation in list(incident.activations):
        if activation.phase == "steps" and activation.state == ActivationState.PENDING_APPROVAL:
            cancel(session, activation_id=activation.id, actor=actor, reason="incident resolved")


def all_clear(
    session: Session,
    catalog: Catalog | None,
    *,
    incident: Incident,
    actor: str,
    opted_out: Collection[str] = (),
    override: str | None = None,
) -> list[Accepted]:
    """Queue the ``on_resolve`` phase of every runbook that was activated for the incident.

    Without a catalog (no contacts in force) or without the runbook (its file never loaded) the
    all-clear cannot be planned: that is audited, and standing down goes ahead regardless.
    """
    accepted = []
    cancel_pending(session, incident=incident, actor=actor)
    for activation in list(incident.activations):
        if activation.phase != "steps":
            continue
        if activation.state != ActivationState.QUEUED and activation.state != ActivationState.COMPLETED:
            continue
        missing = all_clear_unavailable(catalog, activation.runbook_id)
        if missing is not None:
            audit.record(
                session,
                action="all_clear.unavailable",
                actor=actor,
                target_type="activation",
                target_id=activation.id,
                incident_id=incident.id,
                details={"runbook": activation.runbook_id, "reason": missing},
            )
            continue
        assert catalog is not None
        runbook = catalog.runbook(activation.runbook_id)
        if runbook is None or not runbook.on_resolve:
            continue
        resolve = Activation(
            incident_id=incident.id,
            runbook_id=runbook.id,
            phase="on_resolve",
            state=ActivationState.QUEUED,
            reason=f"all clear: {activation.reason}",
            message=None,
            requested_by=actor,
            drill=activation.drill,
            override=optional_text(override),
            created_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(resolve)
                session.flush()
        except IntegrityError:
            continue  # the all-clear for this runbook already went out
        accepted.append(_materialise(session, catalog, runbook, incident, resolve, actor, opted_out))
    return accepted


def all_clear_unavailable(catalog: Catalog | None, runbook_id: str) -> str | None:
    """Why a runbook's all-clear cannot be planned now, or None when it can."""
    if catalog is None:
        return "no contacts are loaded (contacts.yaml is broken and no good version of it is known)"
    if catalog.runbook(runbook_id) is None:
        return f"runbook '{runbook_id}' is not loaded (its file is broken or gone, and no good version is known)"
    return None


def _materialise(
    session: Session,
    catalog: Catalog,
    runbook: Runbook,
    incident: Incident,
    activation: Activation,
    actor: str,
    opted_out: Collection[str],
) -> Accepted:
    info = activation_info(activation)
    opted_out = set(opted_out) | optouts.opted_out_people(session, catalog.contacts)  # STOP replies so far
    plan = planning.plan(
        catalog,
        runbook,
        phase=activation.phase,
        incident=incident_info(incident),
        activation=info,
        override=activation.override,
        opted_out=opted_out,
    )
    now = utcnow()
    batch_ids = write_ledger(session, activation.id, plan, now)
    if activation.phase == "steps":
        timers.schedule(session, runbook, activation.id, now)  # escalation due times
    counts = plan.count_by_channel()
    activation.state = ActivationState.QUEUED
    activation.accepted_at = now
    activation.summary = {
        "counts": counts,
        "groups": plan.count_by_group(),
        "skipped": [
            {"person": s.person_id, "channel": s.channel, "reason": s.reason, "step": s.step} for s in plan.skipped
        ],
    }
    if not plan.deliveries:
        activation.state = ActivationState.COMPLETED
        activation.completed_at = now
    audit.record(
        session,
        action="activation.queued",
        actor=actor,
        target_type="activation",
        target_id=activation.id,
        incident_id=incident.id,
        details={
            "runbook": runbook.id,
            "phase": activation.phase,
            "reason": activation.reason,
            "message": activation.message,
            "drill": activation.drill,
            "counts": counts,
            "skipped": len(plan.skipped),
            "batches": len(batch_ids),
        },
    )
    return Accepted(activation.id, incident.id, activation.state, batch_ids, counts, len(plan.skipped))


def _runbook(catalog: Catalog, runbook_id: str) -> Runbook:
    runbook = catalog.runbook(runbook_id)
    if runbook is None:
        known = ", ".join(sorted(catalog.runbooks)) or "none"
        raise NotFound(f"no runbook '{runbook_id}' (known: {known})")
    return runbook


def open_incident_by_id(session: Session, incident_id: int, *, lock: bool = False, then: str = "") -> Incident:
    """An incident that is still open (confirmed); Conflict naming what to do instead when it is resolved."""
    query = select(Incident).where(Incident.id == incident_id)
    incident = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.state != IncidentState.CONFIRMED:
        raise Conflict(f"incident {incident_id} is resolved{'; ' + then if then else ''}")
    return incident


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def _activation(session: Session, activation_id: int, *, lock: bool = False) -> Activation:
    query = select(Activation).where(Activation.id == activation_id)
    activation = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if activation is None:
        raise NotFound(f"no activation {activation_id}")
    return activation


def note(reason: str | None) -> str:
    """The operator's internal note: required, kept in the audit log, never sent to anyone."""
    text = (reason or "").strip()
    if not text:
        raise InvalidRequest("an internal note is required: say why you are activating (it is never sent)")
    if len(text) > 500:
        raise InvalidRequest("the internal note is longer than 500 characters")
    return text


def optional_text(value: str | None) -> str | None:
    """An optional free text (the message to recipients, an override): stripped, or None when empty."""
    if value is None or not value.strip():
        return None
    return value.strip()


def activation_info(activation: Activation, *, actor: str | None = None) -> ActivationInfo:
    """What templates see of a stored activation: never its internal note."""
    return ActivationInfo(
        id=activation.id,
        actor=actor or activation.requested_by,
        drill=activation.drill,
        message=activation.message or "",
    )


def incident_title(runbooks: Sequence[Runbook]) -> str:
    """A manual incident's title: its runbooks' titles. Drills carry the ``drill`` flag, not a ``[DRILL]`` prefix,
    so that the prefix the planner puts on every drill text appears once."""
    title = " + ".join(runbook.title for runbook in runbooks)
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
