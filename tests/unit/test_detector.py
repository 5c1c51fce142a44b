"""The confirmation policy, driven through time with freezegun: tables of (when, what happens, what we expect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from freezegun import freeze_time

from failover.clock import utcnow
from failover.domain.detection.config import ConfirmPolicy, fold
from failover.domain.detection.policy import (
    NEW_INCIDENT,
    Evidence,
    IncidentView,
    ManualConfirm,
    Outcome,
    Phase,
    ServiceState,
    step,
)
from failover.domain.detection.signals import Issue, Reading, Vote, cast
from failover.domain.durations import parse_duration

EXO, TEAMS = "Exchange Online", "Microsoft Teams"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
POLICY = ConfirmPolicy(
    probe_quorum=2,
    hold=dt.timedelta(minutes=3),
    recover_hold=dt.timedelta(minutes=10),
    max_incidents_per_hour=3,
)


@dataclass
class World:
    """Drives the pure policy the way the engine does: readings become votes, polls replace issues."""

    policy: ConfirmPolicy = POLICY
    services: tuple[str, ...] = (EXO, TEAMS)
    votes: dict[tuple[str, str], Vote] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    incidents: dict[int, IncidentView] = field(default_factory=dict)
    opened: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    last: Outcome | None = None

    def __post_init__(self) -> None:
        self.states = {s: ServiceState(s) for s in self.services}

    def read(self, reading: Reading) -> None:
        key = (reading.voter, reading.service)
        self.votes[key] = cast(self.votes.get(key), reading, utcnow())

    def step(self, manual: ManualConfirm | None = None) -> Outcome:
        now = utcnow()
        evidence = {
            s: Evidence(
                issues=tuple(i for i in self.issues.values() if fold(i.service) == fold(s)),
                votes=tuple(v for (_, service), v in self.votes.items() if service == s),
            )
            for s in self.services
        }
        outcome = step(
            now=now, policy=self.policy, states=self.states, evidence=evidence, incidents=self.incidents, manual=manual
        )
        if outcome.open is not None:
            new_id = len(self.incidents) + 1
            self.incidents[new_id] = IncidentView(new_id, True)
            self.opened.append((new_id, outcome.open.services, outcome.open.issue_ids))
            outcome.states = {
                s: replace(st, incident_id=new_id) if st.incident_id == NEW_INCIDENT else st
                for s, st in outcome.states.items()
            }
        for resolve in outcome.resolves:
            self.incidents[resolve.incident_id] = IncidentView(resolve.incident_id, False, "watcher")
            self.resolved.append(resolve.incident_id)
        self.states = outcome.states
        self.last = outcome
        return outcome


Action = Callable[[World], object]


def probe(name: str, failing: bool, service: str = EXO, ttl: str | None = None) -> Action:
    def act(world: World) -> None:
        expires = utcnow() + parse_duration(ttl) if ttl else None
        world.read(Reading(f"probe:{name}", f"probe:{name}", service, failing, "test", expires_at=expires))

    return act


def graph_unreachable(failing: bool = True) -> Action:
    def act(world: World) -> None:
        for service in world.services:
            world.read(Reading("graph", "graph", service, failing, "token endpoint timed out", kind="graph"))

    return act


def issue(issue_id: str, status: str, classification: str = "incident", service: str = EXO, **kw: object) -> Action:
    def act(world: World) -> None:
        world.issues[issue_id] = Issue(issue_id, service, "Users can't send mail", status, classification, **kw)  # type: ignore[arg-type]

    return act


def operator_resolves(incident_id: int) -> Action:
    def act(world: World) -> None:
        world.incidents[incident_id] = IncidentView(incident_id, False, "cli:alice")

    return act


MANUAL = "manual"  # marker: this row's step is an operator's confirmation of Exchange Online


@dataclass(frozen=True)
class At:
    when: str  # offset from START, e.g. "3m"
    actions: tuple[Action | str, ...]
    phase: Phase
    opened: int = 0  # incidents opened so far
    resolved: int = 0  # incidents the watcher resolved so far
    service: str = EXO


def both_probes(failing: bool) -> tuple[Action, Action]:
    return probe("smtp", failing), probe("http", failing)


TABLE: dict[str, list[At]] = {
    "immediate Graph confirmation": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("1m", (), Phase.CONFIRMED, opened=1),
    ],
    "PascalCase enums from Microsoft's examples confirm too": [
        At("0s", (issue("EX1", "ServiceDegradation", "Incident"),), Phase.CONFIRMED, opened=1),
    ],
    "probe quorum with hold": [
        At("0s", both_probes(True), Phase.SUSPECTED),
        At("1m", both_probes(True), Phase.SUSPECTED),
        At("2m59s", both_probes(True), Phase.SUSPECTED),
        At("3m", both_probes(True), Phase.CONFIRMED, opened=1),
    ],
    "one failing probe never reaches a quorum of two": [
        At("0s", (probe("smtp", True),), Phase.SUSPECTED),
        At("30m", (probe("smtp", True),), Phase.SUSPECTED),
    ],
    "advisory only": [
        At("0s", (issue("EX2", "serviceDegradation", "advisory"),), Phase.SUSPECTED),
        At("45m", (), Phase.SUSPECTED),
    ],
    "investigating is only a suspicion": [
        At("0s", (issue("EX3", "investigating"),), Phase.SUSPECTED),
        At("10m", (issue("EX3", "serviceRestored", is_resolved=True),), Phase.OPERATIONAL),
    ],
    "flapping probe never confirms": [
        *[
            At(f"{minute}m", (probe("smtp", True), probe("http", minute % 2 == 0)), Phase.SUSPECTED)
            for minute in range(0, 20)
        ],
    ],
    "flapping probe after confirmation: one incident, no storm": [
        At("0s", both_probes(True), Phase.SUSPECTED),
        At("3m", both_probes(True), Phase.CONFIRMED, opened=1),
        *[
            At(f"{minute}m", (probe("smtp", True), probe("http", minute % 2 == 0)), Phase.CONFIRMED, opened=1)
            for minute in range(4, 30)
            if minute % 2 == 0
        ],
        At("31m", both_probes(False), Phase.RECOVERING, opened=1),
        At("41m", both_probes(False), Phase.RESOLVED, opened=1, resolved=1),
    ],
    "Graph unreachable plus failing probes": [
        At("0s", (graph_unreachable(), probe("smtp", True)), Phase.SUSPECTED),
        At("2m", (graph_unreachable(), probe("smtp", True)), Phase.SUSPECTED),
        At("3m", (graph_unreachable(), probe("smtp", True)), Phase.CONFIRMED, opened=1),
    ],
    "Graph unreachable alone is not an outage": [
        At("0s", (graph_unreachable(),), Phase.SUSPECTED),
        At("1h", (graph_unreachable(),), Phase.SUSPECTED),
        At("1h1m", (graph_unreachable(False),), Phase.OPERATIONAL),
    ],
    "recovery hold": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("5m", (issue("EX1", "serviceRestored", is_resolved=True),), Phase.RECOVERING, opened=1),
        At("14m59s", (), Phase.RECOVERING, opened=1),
        At("15m", (), Phase.RESOLVED, opened=1, resolved=1),
        At("30m", (), Phase.RESOLVED, opened=1, resolved=1),
    ],
    "trouble during recovery returns to the same incident": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("5m", (issue("EX1", "restoringService", "incident", is_resolved=True),), Phase.RECOVERING, opened=1),
        At("8m", (issue("EX1", "extendedRecovery"),), Phase.CONFIRMED, opened=1),
        At("9m", (issue("EX1", "serviceRestored", is_resolved=True),), Phase.RECOVERING, opened=1),
        At("18m59s", (), Phase.RECOVERING, opened=1),
        At("19m", (), Phase.RESOLVED, opened=1, resolved=1),
    ],
    "falsePositive clears a suspicion": [
        At("0s", (issue("EX3", "investigating"),), Phase.SUSPECTED),
        At("5m", (issue("EX3", "falsePositive"),), Phase.OPERATIONAL),
    ],
    "falsePositive ends a confirmation without recover_hold": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("2m", (issue("EX1", "FalsePositive"),), Phase.RESOLVED, opened=1, resolved=1),
    ],
    "manual override: an operator's resolution mutes the same evidence": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("2m", (operator_resolves(1),), Phase.SUSPECTED, opened=1),
        At("30m", (), Phase.SUSPECTED, opened=1),
        At("40m", (issue("EX1", "serviceRestored", is_resolved=True),), Phase.OPERATIONAL, opened=1),
        At("50m", (issue("EX4", "serviceInterruption"),), Phase.CONFIRMED, opened=2),
    ],
    "manual override: a new Microsoft issue breaks the mute": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("2m", (operator_resolves(1),), Phase.SUSPECTED, opened=1),
        At("5m", (issue("EX5", "serviceDegradation"),), Phase.CONFIRMED, opened=2),
    ],
    "manual override: confirmed by hand is resolved by hand": [
        At("0s", (MANUAL,), Phase.CONFIRMED, opened=1),
        At("1m", (), Phase.RECOVERING, opened=1),
        At("3h", (), Phase.RECOVERING, opened=1),
        At("3h1m", (operator_resolves(1),), Phase.RESOLVED, opened=1),
    ],
    "bounded incidents per service per hour": [
        At("0s", (issue("EX1", "serviceInterruption"),), Phase.CONFIRMED, opened=1),
        At("1m", (issue("EX1", "falsePositive"),), Phase.RESOLVED, opened=1, resolved=1),
        At("2m", (issue("EX2", "serviceInterruption"),), Phase.CONFIRMED, opened=2, resolved=1),
        At("3m", (issue("EX2", "falsePositive"),), Phase.RESOLVED, opened=2, resolved=2),
        At("4m", (issue("EX3", "serviceInterruption"),), Phase.CONFIRMED, opened=3, resolved=2),
        At("5m", (issue("EX3", "falsePositive"),), Phase.RESOLVED, opened=3, resolved=3),
        At("6m", (issue("EX6", "serviceInterruption"),), Phase.SUSPECTED, opened=3, resolved=3),
        At("59m", (), Phase.SUSPECTED, opened=3, resolved=3),
        At("1h", (), Phase.CONFIRMED, opened=4, resolved=3),
    ],
    "a probe that stops reporting stops counting": [
        At("0s", (probe("smtp", True, ttl="3m"), probe("http", True, ttl="3m")), Phase.SUSPECTED),
        At("2m", (probe("smtp", True, ttl="3m"),), Phase.SUSPECTED),
        At("3m", (probe("smtp", True, ttl="3m"),), Phase.SUSPECTED),
    ],
}


@pytest.mark.parametrize("case", list(TABLE), ids=list(TABLE))
def test_policy_table(case: str) -> None:
    world = World()
    with freeze_time(START) as frozen:
        for row in TABLE[case]:
            frozen.move_to(START + parse_duration(row.when))
            manual = None
            for action in row.actions:
                if action == MANUAL:
                    manual = ManualConfirm(EXO, "cli:alice", "users report no mail")
                elif callable(action):
                    action(world)
            world.step(manual)
            state = world.states[row.service]
            where = f"{case} at {row.when}: {state.reason}"
            assert state.phase == row.phase, where
            assert len(world.opened) == row.opened, where
            assert len(world.resolved) == row.resolved, where
            assert (state.incident_id is not None) == (state.phase in {Phase.CONFIRMED, Phase.RECOVERING}), where


def test_graph_unreachable_does_not_vote_when_turned_off() -> None:
    world = World(policy=POLICY.model_copy(update={"graph_unreachable_votes": False}))
    with freeze_time(START) as frozen:
        for minute in range(0, 10):
            frozen.move_to(START + dt.timedelta(minutes=minute))
            graph_unreachable()(world)
            probe("smtp", True)(world)
            world.step()
        assert world.states[EXO].phase == Phase.SUSPECTED and not world.opened


def test_services_confirmed_together_share_one_incident_and_latecomers_join_it() -> None:
    world = World()
    with freeze_time(START) as frozen:
        issue("EX1", "serviceInterruption")(world)
        issue("MO1", "serviceInterruption", service=EXO)(world)
        world.step()
        assert world.opened == [(1, (EXO,), ("EX1", "MO1"))]
        frozen.move_to(START + dt.timedelta(minutes=5))
        issue("TM1", "serviceDegradation", service="microsoft teams")(world)  # service names compare in any case
        outcome = world.step()
        assert [(j.incident_id, j.service, j.issue_ids) for j in outcome.joins] == [(1, TEAMS, ("TM1",))]
        assert outcome.confirmed == [TEAMS]
        assert world.states[TEAMS].incident_id == 1 and len(world.opened) == 1
        # Exchange recovers first: the incident stays open for Teams.
        frozen.move_to(START + dt.timedelta(minutes=10))
        issue("EX1", "serviceRestored", is_resolved=True)(world)
        issue("MO1", "serviceRestored", is_resolved=True)(world)
        world.step()
        frozen.move_to(START + dt.timedelta(minutes=21))
        world.step()
        assert world.states[EXO].phase == Phase.RESOLVED and world.resolved == []
        issue("TM1", "serviceRestored", is_resolved=True)(world)
        world.step()
        frozen.move_to(START + dt.timedelta(minutes=32))
        world.step()
        assert world.states[TEAMS].phase == Phase.RESOLVED and world.resolved == [1]


def test_a_new_issue_during_an_incident_is_linked_to_it() -> None:
    world = World()
    with freeze_time(START) as frozen:
        issue("EX1", "serviceInterruption")(world)
        world.step()
        frozen.move_to(START + dt.timedelta(minutes=1))
        issue("EX9", "serviceDegradation")(world)
        outcome = world.step()
        assert [(j.incident_id, j.issue_ids, j.link_only) for j in outcome.joins] == [(1, ("EX9",), True)]
        assert outcome.confirmed == []


def test_state_survives_a_round_trip_through_storage() -> None:
    world = World()
    with freeze_time(START):
        issue("EX1", "serviceInterruption")(world)
        world.step()
    state = world.states[EXO]
    restored = ServiceState.restore(
        service=state.service,
        phase=str(state.phase),
        since=state.since,
        reason=state.reason,
        incident_id=state.incident_id,
        manual=state.manual,
        extra=state.extra(),
    )
    assert restored == state
