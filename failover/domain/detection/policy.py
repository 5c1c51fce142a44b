"""The confirmation policy: when a watched service's trouble is an outage, and when it is over.

Pure. ``step(now=..., policy=..., states=..., evidence=..., incidents=...)``
takes every watched service's state and the evidence at ``now`` and returns
the next states plus the decisions the engine must carry out (open or join
an incident, resolve one). Per service::

    operational ──evidence──▶ suspected ──confirms──▶ confirmed ──clear──▶ recovering ──recover_hold──▶ resolved
         ▲                        │                      ▲                      │
         └────────nothing─────────┘                      └──────trouble again───┘

A service *confirms* when Graph reports an open issue whose classification
and status are configured (at once), or when ``probe_quorum`` independent
origins have each failed continuously for ``hold``. An advisory, an
``investigating`` issue or a few failing probes only make it *suspected*.
It is *clear* when no issue confirms and fewer than ``probe_quorum`` origins
fail at all; it must stay clear for ``recover_hold`` before the all-clear,
so a flapping probe never causes an activation storm. ``falsePositive`` on
every issue behind a confirmation ends it at once. At most
``max_incidents_per_hour`` new incidents per service per hour.

Services confirmed while an incident is open join that incident: one outage
episode, one incident, each runbook activated once. Operators win: an
incident resolved by hand mutes its services until their evidence clears
(or Microsoft opens a new issue), and a service confirmed by hand is only
resolved by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from failover.domain.detection.config import ConfirmPolicy, fold
from failover.domain.detection.signals import HEALTHY_OVERVIEW, Issue, Vote

NEW_INCIDENT = 0  # stands for "the incident this step opens" until the engine knows its id
HOUR = dt.timedelta(hours=1)
GRAPH_ORIGIN = "graph"


class Phase(StrEnum):
    OPERATIONAL = "operational"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


IN_INCIDENT = frozenset({Phase.CONFIRMED, Phase.RECOVERING})


@dataclass(frozen=True)
class ServiceState:
    service: str
    phase: Phase = Phase.OPERATIONAL
    since: dt.datetime | None = None
    reason: str = ""
    incident_id: int | None = None
    manual: bool = False  # confirmed by an operator: only an operator resolves it
    clear_since: dt.datetime | None = None
    issue_ids: tuple[str, ...] = ()  # Microsoft issues behind the confirmation
    muted: bool = False  # an operator resolved the incident: wait for the evidence to clear
    muted_issues: tuple[str, ...] = ()
    throttled: bool = False
    episodes: tuple[dt.datetime, ...] = ()  # when this service entered a new incident

    def extra(self) -> dict[str, Any]:
        """The fields the engine keeps as JSON beside the phase columns."""
        return {
            "clear_since": _iso(self.clear_since),
            "issue_ids": list(self.issue_ids),
            "muted": self.muted,
            "muted_issues": list(self.muted_issues),
            "throttled": self.throttled,
            "episodes": [_iso(t) for t in self.episodes],
        }

    @classmethod
    def restore(
        cls,
        *,
        service: str,
        phase: str,
        since: dt.datetime | None,
        reason: str,
        incident_id: int | None,
        manual: bool,
        extra: Mapping[str, Any],
    ) -> ServiceState:
        return cls(
            service=service,
            phase=Phase(phase),
            since=since,
            reason=reason,
            incident_id=incident_id,
            manual=manual,
            clear_since=_parse(extra.get("clear_since")),
            issue_ids=tuple(extra.get("issue_ids") or ()),
            muted=bool(extra.get("muted")),
            muted_issues=tuple(extra.get("muted_issues") or ()),
            throttled=bool(extra.get("throttled")),
            episodes=tuple(t for t in (_parse(v) for v in extra.get("episodes") or ()) if t is not None),
        )


@dataclass(frozen=True)
class Evidence:
    """Everything known about one service at ``now``."""

    issues: tuple[Issue, ...] = ()
    votes: tuple[Vote, ...] = ()
    overview: str | None = None  # Graph healthOverviews status


@dataclass(frozen=True)
class Assessment:
    confirming: tuple[Issue, ...]
    potential: tuple[Issue, ...]
    failing: tuple[Vote, ...]
    failing_origins: tuple[str, ...]
    held_origins: tuple[str, ...]
    quorum: int
    overview: str | None
    false_positive_ids: tuple[str, ...] = ()

    @property
    def quorum_held(self) -> bool:
        return len(self.held_origins) >= self.quorum

    @property
    def confirms(self) -> bool:
        return bool(self.confirming) or self.quorum_held

    @property
    def clear(self) -> bool:
        return not self.confirming and len(self.failing_origins) < self.quorum

    @property
    def suspicious(self) -> bool:
        bad_overview = self.overview is not None and fold(self.overview) not in HEALTHY_OVERVIEW
        return bool(self.potential or self.failing or bad_overview)

    def explain(self) -> str:
        parts = [f"Microsoft {i.id} {i.classification}/{i.status}" for i in self.confirming]
        parts += [f"Microsoft {i.id} {i.classification}/{i.status} (not confirming)" for i in self.potential]
        if self.failing_origins:
            parts.append(
                f"{len(self.failing_origins)} source(s) failing ({', '.join(self.failing_origins)}), "
                f"{len(self.held_origins)} held of quorum {self.quorum}"
            )
        if not parts and self.overview and fold(self.overview) not in HEALTHY_OVERVIEW:
            parts.append(f"Graph health overview says {self.overview}")
        return "; ".join(parts) or "no evidence of trouble"


def assess(now: dt.datetime, policy: ConfirmPolicy, evidence: Evidence) -> Assessment:
    confirming = tuple(
        i for i in evidence.issues if i.open and policy.confirms(status=i.status, classification=i.classification)
    )
    potential = tuple(i for i in evidence.issues if i.open and i not in confirming)
    failing = tuple(
        v
        for v in evidence.votes
        if v.failing and v.live(now) and (policy.graph_unreachable_votes or v.origin != GRAPH_ORIGIN)
    )
    origins = sorted({v.origin for v in failing})
    held = sorted({v.origin for v in failing if now - v.since >= policy.hold})
    return Assessment(
        confirming=confirming,
        potential=potential,
        failing=failing,
        failing_origins=tuple(origins),
        held_origins=tuple(held),
        quorum=policy.probe_quorum,
        overview=evidence.overview,
        false_positive_ids=tuple(i.id for i in evidence.issues if i.false_positive),
    )


@dataclass(frozen=True)
class IncidentView:
    """What the detector needs to know about an incident a service is linked to."""

    id: int
    open: bool
    resolved_by: str | None = None


@dataclass(frozen=True)
class ManualConfirm:
    service: str
    actor: str
    reason: str


@dataclass(frozen=True)
class Transition:
    service: str
    before: Phase
    after: Phase
    reason: str


@dataclass(frozen=True)
class Open:
    """Open one incident for these services (the engine learns its id)."""

    services: tuple[str, ...]
    title: str
    issue_ids: tuple[str, ...]
    impact: str | None
    reason: str
    actor: str = "watcher"


@dataclass(frozen=True)
class Join:
    """Add a service (and its Microsoft issues) to an incident already open."""

    incident_id: int
    service: str
    issue_ids: tuple[str, ...]
    reason: str
    link_only: bool = False  # the service was already in it; only new Microsoft issues to add


@dataclass(frozen=True)
class Resolve:
    incident_id: int
    reason: str


@dataclass
class Outcome:
    states: dict[str, ServiceState]
    transitions: list[Transition] = field(default_factory=list)
    open: Open | None = None
    joins: list[Join] = field(default_factory=list)
    resolves: list[Resolve] = field(default_factory=list)
    assessments: dict[str, Assessment] = field(default_factory=dict)

    @property
    def confirmed(self) -> list[str]:
        """Services that entered an incident in this step."""
        joined = [j.service for j in self.joins if not j.link_only]
        return [*(self.open.services if self.open else ()), *joined]


def step(
    *,
    now: dt.datetime,
    policy: ConfirmPolicy,
    states: Mapping[str, ServiceState],
    evidence: Mapping[str, Evidence],
    incidents: Mapping[int, IncidentView],
    manual: ManualConfirm | None = None,
) -> Outcome:
    """One evaluation of every watched service; see the module docstring."""
    outcome = Outcome(states={})
    left: set[int] = set()
    wanting: list[str] = []
    actors: list[str] = []
    for service in sorted(states):
        before = states[service]
        assessment = assess(now, policy, evidence.get(service, Evidence()))
        outcome.assessments[service] = assessment
        state = _after_operator(before, incidents, assessment, now)
        if manual is not None and fold(manual.service) == fold(service):
            state, wants = _confirm_by_hand(state, manual, assessment, now)
            actors.append(manual.actor)
        else:
            state, wants = _advance(state, assessment, policy, now)
        previous = before.incident_id
        if previous not in (None, NEW_INCIDENT, state.incident_id) and _is_open(incidents, previous):
            left.add(previous)
        if wants:
            wanting.append(service)
        elif state.phase == Phase.CONFIRMED and state.incident_id is not None and state.incident_id == previous:
            new_ids = tuple(i for i in state.issue_ids if i not in before.issue_ids)
            if new_ids:
                reason = "Microsoft issue(s) " + ", ".join(new_ids)
                outcome.joins.append(Join(state.incident_id, service, new_ids, reason, link_only=True))
        outcome.states[service] = state
        if before.phase != state.phase or before.muted != state.muted or before.throttled != state.throttled:
            outcome.transitions.append(Transition(service, before.phase, state.phase, state.reason))
    if wanting:
        _assign(outcome, wanting, incidents, evidence, policy, now, actors[0] if actors else "watcher")
    for incident_id in sorted(left):
        if not any(s.incident_id == incident_id for s in outcome.states.values()):
            outcome.resolves.append(Resolve(incident_id, _resolve_reason(outcome, incident_id, states)))
    return outcome


def _after_operator(
    state: ServiceState, incidents: Mapping[int, IncidentView], assessment: Assessment, now: dt.datetime
) -> ServiceState:
    """An incident resolved by an operator ends the service's part in it and mutes the evidence behind it."""
    if state.incident_id is None or state.incident_id == NEW_INCIDENT:
        return state
    view = incidents.get(state.incident_id)
    if view is None or view.open:
        return state
    muted = tuple(sorted({*state.issue_ids, *(i.id for i in assessment.confirming)}))
    who = view.resolved_by or "an operator"
    return replace(
        state,
        phase=Phase.RESOLVED,
        since=now,
        reason=f"incident #{state.incident_id} was resolved by {who}",
        incident_id=None,
        manual=False,
        clear_since=None,
        issue_ids=(),
        muted=True,
        muted_issues=muted,
    )


def _confirm_by_hand(
    state: ServiceState, manual: ManualConfirm, assessment: Assessment, now: dt.datetime
) -> tuple[ServiceState, bool]:
    reason = f"confirmed by {manual.actor}: {manual.reason}"
    ids = tuple(i.id for i in assessment.confirming)
    if state.phase in IN_INCIDENT and state.incident_id is not None:
        return replace(state, phase=Phase.CONFIRMED, manual=True, reason=reason, clear_since=None), False
    confirmed = replace(
        state,
        phase=Phase.CONFIRMED,
        since=now,
        reason=reason,
        manual=True,
        clear_since=None,
        issue_ids=ids,
        muted=False,
        muted_issues=(),
        throttled=False,
    )
    return confirmed, True


def _advance(state: ServiceState, a: Assessment, policy: ConfirmPolicy, now: dt.datetime) -> tuple[ServiceState, bool]:
    """The next state of one service; True when it needs an incident."""
    if state.phase in IN_INCIDENT and state.incident_id is not None:
        return _in_incident(state, a, policy, now), False
    if state.muted:
        new_issues = [i.id for i in a.confirming if i.id not in state.muted_issues]
        if not a.confirms:
            state = replace(state, muted=False, muted_issues=())
        elif not new_issues:
            reason = "an operator resolved the last incident; waiting for the evidence to clear before another"
            return _move(state, Phase.SUSPECTED, now, reason), False
        else:
            state = replace(state, muted=False, muted_issues=())
    if a.confirms:
        recent = tuple(t for t in state.episodes if now - t < HOUR)
        if len(recent) >= policy.max_incidents_per_hour:
            until = min(recent) + HOUR
            reason = (
                f"{a.explain()}; {len(recent)} incident(s) in the last hour, "
                f"no new one before {until:%H:%M} UTC (max_incidents_per_hour)"
            )
            return replace(_move(state, Phase.SUSPECTED, now, reason), throttled=True, episodes=recent), False
        confirmed = replace(
            _move(state, Phase.CONFIRMED, now, a.explain()),
            issue_ids=tuple(i.id for i in a.confirming),
            clear_since=None,
            throttled=False,
            episodes=recent,
        )
        return confirmed, True
    state = replace(state, throttled=False)
    if a.suspicious:
        return _move(state, Phase.SUSPECTED, now, a.explain()), False
    if state.phase == Phase.RESOLVED:
        return state, False  # stays "resolved" on the dashboard until something new happens
    return _move(state, Phase.OPERATIONAL, now, a.explain()), False


def _in_incident(state: ServiceState, a: Assessment, policy: ConfirmPolicy, now: dt.datetime) -> ServiceState:
    if a.confirms:
        ids = tuple(dict.fromkeys([*state.issue_ids, *(i.id for i in a.confirming)]))
        reason = a.explain() if not state.manual else state.reason
        if state.phase == Phase.RECOVERING:
            reason = f"trouble again: {a.explain()}"
        return replace(_move(state, Phase.CONFIRMED, now, reason), issue_ids=ids, clear_since=None)
    if state.manual:
        # Confirmed by hand: the watcher reports health but leaves the all-clear to an operator.
        if not a.clear:
            return replace(_move(state, Phase.CONFIRMED, now, state.reason), clear_since=None)
        clear_since = state.clear_since or now
        reason = f"clear since {clear_since:%H:%M:%S} UTC; confirmed by hand, so an operator resolves it"
        return replace(_move(state, Phase.RECOVERING, now, reason), clear_since=clear_since)
    if _false_positive(state, a):
        return _leave(state, now, "Microsoft marked " + ", ".join(state.issue_ids) + " falsePositive")
    if not a.clear:
        return replace(_move(state, Phase.CONFIRMED, now, f"still failing: {a.explain()}"), clear_since=None)
    clear_since = state.clear_since or now
    if now - clear_since >= policy.recover_hold:
        return _leave(state, now, f"healthy since {clear_since:%H:%M:%S} UTC (recover_hold {policy.recover_hold})")
    reason = f"healthy since {clear_since:%H:%M:%S} UTC; all-clear after recover_hold {policy.recover_hold}"
    return replace(_move(state, Phase.RECOVERING, now, reason), clear_since=clear_since)


def _false_positive(state: ServiceState, a: Assessment) -> bool:
    # Microsoft withdrew every issue behind the confirmation and no probe quorum holds it: no recover_hold.
    return bool(state.issue_ids) and a.clear and set(state.issue_ids) <= set(a.false_positive_ids)


def _is_open(incidents: Mapping[int, IncidentView], incident_id: int | None) -> bool:
    view = incidents.get(incident_id) if incident_id is not None else None
    return view is None or view.open


def _leave(state: ServiceState, now: dt.datetime, reason: str) -> ServiceState:
    return replace(
        _move(state, Phase.RESOLVED, now, reason),
        incident_id=None,
        manual=False,
        clear_since=None,
        issue_ids=(),
    )


def _move(state: ServiceState, phase: Phase, now: dt.datetime, reason: str) -> ServiceState:
    since = state.since if state.phase == phase and state.since is not None else now
    return replace(state, phase=phase, since=since, reason=reason)


def _assign(
    outcome: Outcome,
    wanting: list[str],
    incidents: Mapping[int, IncidentView],
    evidence: Mapping[str, Evidence],
    policy: ConfirmPolicy,
    now: dt.datetime,
    actor: str,
) -> None:
    """Wanting services join the open episode's incident, or open one together."""
    episode = min(
        (
            s.incident_id
            for s in outcome.states.values()
            if s.phase in IN_INCIDENT
            and s.incident_id not in (None, NEW_INCIDENT)
            and _is_open(incidents, s.incident_id)
        ),
        default=None,
    )
    for service in wanting:
        state = outcome.states[service]
        target = episode if episode is not None else NEW_INCIDENT
        outcome.states[service] = replace(state, incident_id=target, episodes=(*state.episodes, now))
        if episode is not None:
            outcome.joins.append(Join(episode, service, state.issue_ids, state.reason))
    if episode is None:
        ids = tuple(dict.fromkeys(i for s in wanting for i in outcome.states[s].issue_ids))
        issues = [i for s in wanting for i in evidence.get(s, Evidence()).issues if i.id in ids]
        impact = next((i.impact for i in issues if i.impact), None)
        reasons = "; ".join(f"{s}: {outcome.states[s].reason}" for s in wanting)
        outcome.open = Open(tuple(wanting), incident_title(wanting), ids, impact, reasons, actor)


def incident_title(services: Sequence[str]) -> str:
    """The title of an incident the watcher (or an operator confirming by hand) opens."""
    return f"{' + '.join(services)} outage"


def _resolve_reason(outcome: Outcome, incident_id: int, before: Mapping[str, ServiceState]) -> str:
    reasons = [
        f"{service}: {outcome.states[service].reason}"
        for service, state in before.items()
        if state.incident_id == incident_id and service in outcome.states
    ]
    return "; ".join(reasons) or "every service is clear"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
