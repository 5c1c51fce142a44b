"""Outage detection use cases: readings in, decisions out, each in one transaction.

Every use case locks the ``watch_head`` row first, so two watchers (two
beats by mistake, a worker restarted mid-poll, the webhook and the poller
at once) take turns; records what it was told (votes, Microsoft issues, a
signal row for each change); runs the pure policy
(:func:`failover.domain.detection.policy.step`) over every watched service; and
carries out its decisions in the same transaction: open or join an
incident, activate each matching runbook once (the activations' unique key
holds that even if the lock did not), resolve an incident, which sends the
runbooks' all-clear once and closes its status notices. The caller relays
the returned batch ids after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain.detection import policy as detector
from failover.domain.detection.config import DetectionConfig, fold
from failover.domain.detection.policy import (
    IN_INCIDENT,
    NEW_INCIDENT,
    Evidence,
    IncidentView,
    ManualConfirm,
    Phase,
    ServiceState,
)
from failover.domain.detection.signals import (
    HEALTHY_OVERVIEW,
    GraphFailure,
    GraphSnapshot,
    Issue,
    Reading,
    Vote,
    cast,
    changed,
)
from failover.domain.runbooks import Catalog
from failover.engine import activation, audit
from failover.engine import incidents as incident_cases
from failover.errors import FailoverError, InvalidRequest, NotFound
from failover.models import (
    Activation,
    DetectionVote,
    Incident,
    IncidentState,
    ServiceIssue,
    Signal,
    WatchedService,
    WatchHead,
)
from failover.privacy import scrub

log = logging.getLogger(__name__)

ACTOR = "watcher"
GRAPH_VOTES_LAST = 3  # a Graph vote outlives this many missed polls
REASON_CHARS = 500


@dataclass
class Report:
    """What one use case decided; ``batch_ids`` go to the relay after commit."""

    batch_ids: list[int] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)
    opened: int | None = None
    joined: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    activations: list[int] = field(default_factory=list)
    deferred: bool = False  # decisions wait until the runbooks load again

    def as_dict(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "opened": self.opened,
            "joined": self.joined,
            "resolved": self.resolved,
            "activations": self.activations,
            "deferred": self.deferred,
        }


# -- use cases ------------------------------------------------------------------------


def graph_polled(
    session: Session, catalog: Catalog | None, config: DetectionConfig, *, snapshot: GraphSnapshot, now: dt.datetime
) -> Report:
    """A successful Graph poll: keep the issues of watched services, then decide."""
    head = _lock(session)
    rows = _ensure_services(session, config, now)
    _graph_state(session, head, "ok", f"Graph answered ({snapshot.requests} request(s))", now)
    head.graph_ok_at, head.graph_backoff_until = now, None
    _record_issues(session, config, rows, snapshot.issues, now)
    for row in rows.values():
        status = next((v for k, v in snapshot.overviews.items() if fold(k) == fold(row.service)), None)
        if status is None or status == row.graph_status:
            continue
        if row.graph_status is not None or fold(status) not in HEALTHY_OVERVIEW:  # not "first seen: operational"
            change = Change("graph", "graph", "graph:overview", row.service, status, f"health overview: {status}")
            _signal(session, rows, change, now)
        row.graph_status = status
    expires = now + GRAPH_VOTES_LAST * config.graph.poll_interval
    _record_votes(session, rows, [_graph_reading(s, False, "Graph answered", expires) for s in rows], now, quiet=True)
    return _evaluate(session, catalog, config, rows, now)


def graph_failed(
    session: Session, catalog: Catalog | None, config: DetectionConfig, *, failure: GraphFailure, now: dt.datetime
) -> Report:
    """A failed Graph poll. Unreachable is evidence; misconfigured and throttled are not."""
    head = _lock(session)
    rows = _ensure_services(session, config, now)
    _graph_state(session, head, failure.kind, failure.detail, now)
    if failure.kind == "throttled" and failure.retry_after:
        head.graph_backoff_until = now + dt.timedelta(seconds=failure.retry_after)
    if failure.votes:
        expires = now + GRAPH_VOTES_LAST * config.graph.poll_interval
        summary = f"Graph unreachable: {failure.detail}"
        _record_votes(session, rows, [_graph_reading(s, True, summary, expires) for s in rows], now, quiet=True)
    return _evaluate(session, catalog, config, rows, now)


def readings_received(
    session: Session,
    catalog: Catalog | None,
    config: DetectionConfig,
    *,
    readings: Sequence[Reading],
    now: dt.datetime,
    received: dict[str, Any] | None = None,
) -> Report:
    """Probe results or webhook signals: record the votes, then decide."""
    _lock(session)
    rows = _ensure_services(session, config, now)
    if received is not None:
        audit.record(session, action="signal.received", actor=f"webhook:{received.get('source')}", details=received)
    _record_votes(session, rows, [r for r in readings if r.service in rows], now)
    return _evaluate(session, catalog, config, rows, now)


def tick(session: Session, catalog: Catalog | None, config: DetectionConfig, *, now: dt.datetime) -> Report:
    """Re-evaluate without new readings: holds ripen, votes go stale, operators resolve incidents."""
    _lock(session)
    rows = _ensure_services(session, config, now)
    return _evaluate(session, catalog, config, rows, now)


def confirm_by_hand(
    session: Session,
    catalog: Catalog,
    config: DetectionConfig,
    *,
    service: str,
    actor: str,
    reason: str,
    now: dt.datetime,
) -> Report:
    """An operator confirms an outage the watcher has not (yet): same path, resolved only by hand."""
    watched = config.service(service)
    if watched is None:
        raise NotFound(f"'{service}' is not watched (watched: {', '.join(config.watch) or 'none'})")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("a reason is required: say why you are confirming the outage")
    _lock(session)
    rows = _ensure_services(session, config, now)
    _signal(session, rows, Change("manual", f"manual:{actor}", f"manual:{actor}", watched, "failing", reason), now)
    manual = ManualConfirm(watched, actor, reason[:REASON_CHARS])
    return _evaluate(session, catalog, config, rows, now, manual=manual)


def graph_backoff(session: Session) -> dt.datetime | None:
    head = session.get(WatchHead, 1)
    return head.graph_backoff_until if head is not None else None


# -- recording ------------------------------------------------------------------------


def _lock(session: Session) -> WatchHead:
    """Serialise evaluations across processes (SQLite's BEGIN IMMEDIATE does it there).

    The incidents services are linked to are locked too, before any audit row
    is written: an operator resolving one locks it and then the audit head, so
    taking them in the same order here rules out a deadlock.
    """
    head = session.execute(select(WatchHead).where(WatchHead.id == 1).with_for_update()).scalar_one()
    linked = select(WatchedService.incident_id).where(WatchedService.incident_id.is_not(None))
    session.execute(select(Incident.id).where(Incident.id.in_(linked)).order_by(Incident.id).with_for_update()).all()
    return head


def _ensure_services(session: Session, config: DetectionConfig, now: dt.datetime) -> dict[str, WatchedService]:
    stored = {fold(row.service): row for row in session.scalars(select(WatchedService))}
    rows: dict[str, WatchedService] = {}
    for service in config.watch:
        row = stored.get(fold(service))
        if row is None:
            row = WatchedService(
                service=service, phase=Phase.OPERATIONAL.value, since=now, reason="", extra={}, updated_at=now
            )
            session.add(row)
        rows[service] = row
    session.flush()
    return rows


def _graph_reading(service: str, failing: bool, summary: str, expires: dt.datetime) -> Reading:
    return Reading(
        origin=detector.GRAPH_ORIGIN,
        voter="graph",
        service=service,
        failing=failing,
        summary=summary,
        kind="graph",
        expires_at=expires,
    )


def _graph_state(session: Session, head: WatchHead, state: str, detail: str, now: dt.datetime) -> None:
    if head.graph_state != state:
        status = "failing" if state == "unreachable" else state
        _signal(session, {}, Change("graph", "graph", "graph", None, status, f"Graph {state}: {detail}"), now)
        audit.record(
            session,
            action="watch.graph",
            actor=ACTOR,
            target_type="source",
            target_id="graph",
            details={"state": state, "was": head.graph_state, "detail": scrub(detail, REASON_CHARS)},
        )
    head.graph_state, head.graph_detail, head.graph_checked_at = state, detail[:REASON_CHARS], now


def _record_votes(
    session: Session,
    rows: dict[str, WatchedService],
    readings: Iterable[Reading],
    now: dt.datetime,
    *,
    quiet: bool = False,
) -> None:
    """Upsert each voter's vote; a verdict that changed becomes a signal (``quiet``: the caller said it once)."""
    for reading in readings:
        row = session.get(DetectionVote, (reading.voter, reading.service))
        previous = _vote(row) if row is not None else None
        vote = cast(previous, reading, now)
        if row is None:
            row = DetectionVote(voter=vote.voter, service=vote.service)
            session.add(row)
        row.origin, row.failing, row.since, row.seen_at = vote.origin, vote.failing, vote.since, vote.seen_at
        row.expires_at, row.summary = vote.expires_at, scrub(vote.summary, REASON_CHARS)
        if changed(previous, vote) and not quiet:
            status = "failing" if vote.failing else "healthy"
            change = Change(reading.kind, vote.origin, vote.voter, vote.service, status, vote.summary, reading.details)
            _signal(session, rows, change, now)
    session.flush()


def _record_issues(
    session: Session,
    config: DetectionConfig,
    rows: dict[str, WatchedService],
    issues: Sequence[Issue],
    now: dt.datetime,
) -> None:
    """Keep watched services' issues; a new open issue or a change to a known one is a signal."""
    listed: set[str] = set()
    for issue in issues:
        service = config.service(issue.service)
        if service is None:
            continue
        listed.add(issue.id)
        row = session.get(ServiceIssue, issue.id)
        before = _issue(row).fingerprint() if row is not None else None
        was_open = row is not None and _issue(row).open
        if row is None:
            row = ServiceIssue(id=issue.id, first_seen_at=now)
            session.add(row)
        row.service, row.title, row.status, row.classification = (
            service,
            issue.title,
            issue.status,
            issue.classification,
        )
        row.is_resolved, row.impact, row.feature = issue.is_resolved, issue.impact, issue.feature
        row.latest_post, row.latest_post_at = issue.latest_post, issue.latest_post_at
        row.started_at, row.ended_at, row.last_modified_at = issue.started_at, issue.ended_at, issue.last_modified_at
        row.current, row.seen_at = True, now
        if before != issue.fingerprint() and (issue.open or was_open):
            summary = f"{issue.id} {issue.classification}/{issue.status}: {issue.title}"
            details = {"impact": issue.impact, "latest_post": (issue.latest_post or "")[:REASON_CHARS]}
            change = Change("issue", "graph", f"graph:{issue.id}", service, issue.status, summary, details, issue.id)
            _signal(session, rows, change, now)
    for row in session.scalars(select(ServiceIssue).where(ServiceIssue.current.is_(True))):
        if row.id not in listed:
            row.current = False  # Graph no longer lists it: it says nothing any more
    session.flush()


@dataclass(frozen=True)
class Change:
    """What a source said that is worth a row in the signal log (a verdict that changed, an issue update)."""

    kind: str  # graph | issue | probe | webhook | manual
    origin: str  # the source: graph, probe:<key>, webhook:<name>, manual:<actor>
    voter: str  # who votes: graph:overview, graph:<issue id>, probe:<key>, ...
    service: str | None  # the watched service, None for the source's own state
    status: str
    summary: str
    details: dict[str, Any] | None = None
    ms_issue_id: str | None = None


def _signal(session: Session, rows: dict[str, WatchedService], change: Change, now: dt.datetime) -> Signal:
    """Store ``change`` in the signal log (linked to the incident its service is in) and audit it."""
    service = change.service
    row = rows.get(service) if service else None
    in_incident = row is not None and row.phase in IN_INCIDENT and row.incident_id is not None
    details = change.details or {}
    signal = Signal(
        at=now,
        kind=change.kind,
        origin=change.origin,
        voter=change.voter,
        service=service,
        status=change.status[:40],
        summary=scrub(change.summary, REASON_CHARS),
        details={k: scrub(v, REASON_CHARS) if isinstance(v, str) else v for k, v in details.items()},
        ms_issue_id=change.ms_issue_id,
        incident_id=row.incident_id if in_incident and row is not None else None,
    )
    session.add(signal)
    session.flush()
    audit.record(
        session,
        action="signal.changed",
        actor=ACTOR,
        target_type="signal",
        target_id=signal.id,
        incident_id=signal.incident_id,
        details={
            "kind": change.kind,
            "voter": change.voter,
            "service": service,
            "status": signal.status,
            "summary": signal.summary,
        },
    )
    return signal


# -- deciding -----------------------------------------------------------------------


def _evaluate(
    session: Session,
    catalog: Catalog | None,
    config: DetectionConfig,
    rows: dict[str, WatchedService],
    now: dt.datetime,
    *,
    manual: ManualConfirm | None = None,
) -> Report:
    """One detector step over every watched service, applied: open, join, save, link, resolve, activate."""
    report = Report()
    if catalog is None:
        # Without loadable runbooks the watcher cannot act on a decision; readings are kept, decisions wait.
        log.error("runbooks or contacts have problems: detection decisions wait until `failover runbooks check` passes")
        report.deferred = True
        return report
    outcome = _decide(session, config, rows, now, manual)
    if outcome.open is not None:
        _open_incident(session, outcome, manual, report)
    for join in outcome.joins:
        _join(session, join, report)
    _save_states(session, outcome, rows, now, manual, report)
    for service in outcome.confirmed:
        state = outcome.states[service]
        if state.incident_id is not None:
            _link_signals(session, state.incident_id, service, outcome.assessments[service])
    _resolve_ended(session, catalog, outcome, report)
    _activate_matching(session, catalog, outcome.states, set(outcome.confirmed), report)
    return report


def _decide(
    session: Session,
    config: DetectionConfig,
    rows: dict[str, WatchedService],
    now: dt.datetime,
    manual: ManualConfirm | None,
) -> detector.Outcome:
    """The detector's step over the stored states, evidence and the incidents they are linked to."""
    states = {service: _state(row) for service, row in rows.items()}
    evidence = _evidence(session, config, rows)
    linked = {s.incident_id for s in states.values() if s.incident_id not in (None, NEW_INCIDENT)}
    views = {
        i.id: IncidentView(i.id, i.state == IncidentState.CONFIRMED, i.resolved_by)
        for i in session.scalars(select(Incident).where(Incident.id.in_(linked)))
    }
    return detector.step(
        now=now, policy=config.confirm, states=states, evidence=evidence, incidents=views, manual=manual
    )


def _open_incident(session: Session, outcome: detector.Outcome, manual: ManualConfirm | None, report: Report) -> None:
    """Open the incident the step decided on; services waiting for it (NEW_INCIDENT) get its id."""
    decision = outcome.open
    assert decision is not None
    incident = activation.open_incident(
        session,
        title=decision.title,
        services=decision.services,
        source="watcher" if manual is None else "manual",
        actor=decision.actor,
        ms_issue_ids=decision.issue_ids,
        impact=decision.impact,
    )
    report.opened = incident.id
    outcome.states = {
        s: replace(st, incident_id=incident.id) if st.incident_id == NEW_INCIDENT else st
        for s, st in outcome.states.items()
    }
    audit.record(
        session,
        action="watch.confirmed",
        actor=decision.actor,
        target_type="incident",
        target_id=incident.id,
        incident_id=incident.id,
        details={
            "services": list(decision.services),
            "ms_issue_ids": list(decision.issue_ids),
            "why": decision.reason[:REASON_CHARS],
        },
    )


def _save_states(
    session: Session,
    outcome: detector.Outcome,
    rows: dict[str, WatchedService],
    now: dt.datetime,
    manual: ManualConfirm | None,
    report: Report,
) -> None:
    """Store each service's new state; every transition is reported and audited."""
    for service, state in outcome.states.items():
        _save(rows[service], state, now)
        report.transitions.extend(
            f"{t.service}: {t.before} -> {t.after}" for t in outcome.transitions if t.service == service
        )
    for transition in outcome.transitions:
        state = outcome.states[transition.service]
        audit.record(
            session,
            action="watch.transition",
            actor=ACTOR if manual is None or fold(manual.service) != fold(transition.service) else manual.actor,
            target_type="service",
            target_id=transition.service,
            incident_id=state.incident_id,
            details={
                "from": str(transition.before),
                "to": str(transition.after),
                "why": scrub(transition.reason, REASON_CHARS),
                "muted": state.muted,
                "throttled": state.throttled,
            },
        )
    session.flush()


def _resolve_ended(session: Session, catalog: Catalog, outcome: detector.Outcome, report: Report) -> None:
    """Resolve the incidents the step says are over (still confirmed): their all-clears are queued."""
    for resolve in outcome.resolves:
        ending = session.get(Incident, resolve.incident_id)
        if ending is None or ending.state != IncidentState.CONFIRMED:
            continue
        accepted = incident_cases.resolve(
            session, catalog, incident_id=ending.id, actor=ACTOR, note=scrub(resolve.reason, REASON_CHARS)
        )
        report.resolved.append(ending.id)
        report.batch_ids.extend(b for item in accepted for b in item.batch_ids)


def _join(session: Session, join: detector.Join, report: Report) -> None:
    incident = session.scalars(select(Incident).where(Incident.id == join.incident_id).with_for_update()).one_or_none()
    if incident is None or incident.state != IncidentState.CONFIRMED:
        return  # resolved by an operator a moment ago: the next evaluation mutes the service
    services = list(dict.fromkeys([*(incident.services or []), join.service]))
    issue_ids = list(dict.fromkeys([*(incident.ms_issue_ids or []), *join.issue_ids]))
    added_service = services != list(incident.services or [])
    incident.services, incident.ms_issue_ids = services, issue_ids  # reassigned: JSON columns track assignment
    if added_service:
        report.joined.append(incident.id)
    audit.record(
        session,
        action="incident.issues_linked" if join.link_only else "incident.joined",
        actor=ACTOR,
        target_type="incident",
        target_id=incident.id,
        incident_id=incident.id,
        details={
            "service": join.service,
            "ms_issue_ids": list(join.issue_ids),
            "why": scrub(join.reason, REASON_CHARS),
        },
    )


def _activate_matching(
    session: Session, catalog: Catalog, states: dict[str, ServiceState], fresh: set[str], report: Report
) -> None:
    """Each runbook whose trigger names a confirmed service, once per incident (the unique key enforces it)."""
    by_incident: dict[int, list[str]] = {}
    for service, state in states.items():
        if state.phase == Phase.CONFIRMED and state.incident_id not in (None, NEW_INCIDENT):
            by_incident.setdefault(state.incident_id or 0, []).append(service)
    for incident_id, services in sorted(by_incident.items()):
        wanted = {fold(s) for s in services}
        done = set(
            session.scalars(
                select(Activation.runbook_id).where(Activation.incident_id == incident_id, Activation.phase == "steps")
            )
        )
        for runbook in catalog.runbooks.values():
            matched = [s for s in runbook.trigger.services if fold(s) in wanted]
            if not matched or runbook.id in done:
                continue
            reasons = "; ".join(f"{s}: {states[s].reason}" for s in services if fold(s) in {fold(m) for m in matched})
            reason = f"outage confirmed by the watcher ({reasons})"[:REASON_CHARS]
            try:
                with session.begin_nested():
                    accepted = activation.activate(
                        session,
                        catalog,
                        runbook_id=runbook.id,
                        reason=scrub(reason),
                        actor=ACTOR,
                        incident_id=incident_id,
                        source="watcher",
                    )
            except FailoverError as exc:
                if fresh & set(services):
                    audit.record(
                        session,
                        action="watch.activation_failed",
                        actor=ACTOR,
                        target_type="runbook",
                        target_id=runbook.id,
                        incident_id=incident_id,
                        details={"error": scrub(str(exc), REASON_CHARS)},
                    )
                log.error("runbook %s could not be activated for incident %s: %s", runbook.id, incident_id, exc)
                continue
            if accepted.created:
                report.activations.append(accepted.activation_id)
                report.batch_ids.extend(accepted.batch_ids)


def _link_signals(session: Session, incident_id: int, service: str, assessment: detector.Assessment) -> None:
    """The signals behind a confirmation point at its incident."""
    latest: list[Signal | None] = []
    for vote in assessment.failing:
        latest.append(
            session.scalars(
                select(Signal)
                .where(Signal.voter == vote.voter, (Signal.service == service) | Signal.service.is_(None))
                .order_by(Signal.id.desc())
                .limit(1)
            ).first()
        )
    for issue in assessment.confirming:
        latest.append(
            session.scalars(
                select(Signal).where(Signal.ms_issue_id == issue.id).order_by(Signal.id.desc()).limit(1)
            ).first()
        )
    for signal in latest:
        if signal is not None and signal.incident_id is None:
            signal.incident_id = incident_id


# -- mapping between rows and pure values ---------------------------------------------------


def _evidence(session: Session, config: DetectionConfig, rows: dict[str, WatchedService]) -> dict[str, Evidence]:
    votes: dict[str, list[Vote]] = {s: [] for s in rows}
    for vote in session.scalars(select(DetectionVote).where(DetectionVote.service.in_(list(rows)))):
        votes[vote.service].append(_vote(vote))
    issues: dict[str, list[Issue]] = {s: [] for s in rows}
    for issue in session.scalars(select(ServiceIssue).where(ServiceIssue.current.is_(True))):
        service = config.service(issue.service)
        if service in issues:
            issues[service].append(_issue(issue))
    return {s: Evidence(issues=tuple(issues[s]), votes=tuple(votes[s]), overview=rows[s].graph_status) for s in rows}


def _vote(row: DetectionVote) -> Vote:
    return Vote(
        origin=row.origin,
        voter=row.voter,
        service=row.service,
        failing=row.failing,
        since=row.since,
        seen_at=row.seen_at,
        summary=row.summary,
        expires_at=row.expires_at,
    )


def _issue(row: ServiceIssue) -> Issue:
    return Issue(
        id=row.id,
        service=row.service,
        title=row.title,
        status=row.status,
        classification=row.classification,
        is_resolved=row.is_resolved,
        impact=row.impact,
        feature=row.feature,
        latest_post=row.latest_post,
        latest_post_at=row.latest_post_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        last_modified_at=row.last_modified_at,
    )


def _state(row: WatchedService) -> ServiceState:
    return ServiceState.restore(
        service=row.service,
        phase=row.phase,
        since=row.since,
        reason=row.reason,
        incident_id=row.incident_id,
        manual=row.manual,
        extra=row.extra or {},
    )


def _save(row: WatchedService, state: ServiceState, now: dt.datetime) -> None:
    values = {
        "phase": state.phase.value,
        "since": state.since,
        "reason": scrub(state.reason, 2000),
        "incident_id": state.incident_id,
        "manual": state.manual,
        "extra": state.extra(),
    }
    if any(getattr(row, key) != value for key, value in values.items()):
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
