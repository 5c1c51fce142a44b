"""The detection engine on SQLite and PostgreSQL: readings in, incidents, activations and all-clears out."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from failover.clock import utcnow
from failover.domain.detection.config import ConfirmPolicy, DetectionConfig
from failover.domain.detection.signals import GraphFailure, GraphSnapshot, Issue, Reading
from failover.engine import audit
from failover.engine.detection import decisions as detection
from failover.engine.detection import view as detection_view
from failover.engine.detection.decisions import Report
from failover.models import Activation, DetectionVote, Incident, Notice, Signal, WatchedService
from failover.runtime import Runtime
from failover.sources.graph import parse_issue
from tests.fakes.microsoft import issue

EXO, TEAMS, SUITE = "Exchange Online", "Microsoft Teams", "Microsoft 365 suite"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CONFIG = DetectionConfig(
    watch=(EXO, TEAMS, SUITE),
    confirm=ConfirmPolicy(
        probe_quorum=2,
        hold=dt.timedelta(minutes=3),
        recover_hold=dt.timedelta(minutes=10),
        max_incidents_per_hour=3,
    ),
)


def snapshot(*items: dict[str, Any]) -> GraphSnapshot:
    issues = tuple(i for i in (parse_issue(item) for item in items) if i is not None)
    return GraphSnapshot(issues, {}, 2)


def run(runtime: Runtime, use_case: Callable[..., Report], *, catalog: Any = "load", **kwargs: Any) -> Report:
    with runtime.database.transaction() as session:
        return use_case(
            session, runtime.config.catalog() if catalog == "load" else catalog, CONFIG, now=utcnow(), **kwargs
        )


def poll(runtime: Runtime, *items: dict[str, Any]) -> Report:
    return run(runtime, detection.graph_polled, snapshot=snapshot(*items))


def probe(name: str, failing: bool, service: str = EXO) -> Reading:
    return Reading(
        f"probe:{name}", f"probe:{name}", service, failing, f"{name} {'failing' if failing else 'ok'}", kind="probe"
    )


def activations(runtime: Runtime) -> list[tuple[int, str, str, str]]:
    with runtime.database.reading() as session:
        rows = session.scalars(select(Activation).order_by(Activation.id))
        return [(a.incident_id, a.runbook_id, a.phase, a.state) for a in rows]


def phase(runtime: Runtime, service: str = EXO) -> str:
    with runtime.database.reading() as session:
        row = session.get(WatchedService, service)
        return row.phase if row else "operational"


def incidents(runtime: Runtime) -> list[Incident]:
    with runtime.database.reading() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def drain(runtime: Runtime, report: Report) -> None:
    for batch_id in report.batch_ids:
        runtime.delivery.send_batch(batch_id)


def chain_ok(runtime: Runtime) -> bool:
    with runtime.database.reading() as session:
        return audit.verify(session).ok


def test_graph_confirmation_opens_one_incident_and_activates_each_matching_runbook_once(runtime: Runtime) -> None:
    outage = issue("EX226574", status="serviceInterruption", classification="incident")
    with freeze_time(START):
        report = poll(runtime, outage)
    assert report.opened is not None and report.transitions == [f"{EXO}: operational -> confirmed"]
    [incident] = incidents(runtime)
    assert (incident.source, incident.services, incident.ms_issue_ids) == ("watcher", [EXO], ["EX226574"])
    assert incident.impact == outage["impactDescription"] and incident.title == "Exchange Online outage"
    assert activations(runtime) == [(incident.id, "exchange-outage", "steps", "queued")]
    assert report.batch_ids
    with freeze_time(START + dt.timedelta(minutes=1)):
        again = poll(runtime, outage)
        tick = run(runtime, detection.tick)
    assert again.opened is None and again.activations == [] and again.batch_ids == [] and tick.transitions == []
    assert len(activations(runtime)) == 1 and len(incidents(runtime)) == 1
    with runtime.database.reading() as session:
        linked = list(session.scalars(select(Signal).where(Signal.incident_id == incident.id)))
        view = detection_view.overview(session, CONFIG, utcnow())
    assert [s.ms_issue_id for s in linked] == ["EX226574"]
    exo = view["services"][0]
    assert (exo["phase"], exo["incident_id"], exo["issues"][0]["id"]) == ("confirmed", incident.id, "EX226574")
    assert chain_ok(runtime)


def test_the_all_clear_goes_out_once_after_recover_hold(runtime: Runtime) -> None:
    with freeze_time(START):
        drain(runtime, poll(runtime, issue(status="serviceInterruption")))
    [incident] = incidents(runtime)
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Notice).where(Notice.state == "open")) == 1
    with freeze_time(START + dt.timedelta(minutes=20)):
        report = poll(runtime, issue(status="serviceRestored", resolved=True))
    assert report.transitions == [f"{EXO}: confirmed -> recovering"] and phase(runtime) == "recovering"
    with freeze_time(START + dt.timedelta(minutes=29, seconds=59)):
        assert run(runtime, detection.tick).resolved == []
    with freeze_time(START + dt.timedelta(minutes=30)):
        report = run(runtime, detection.tick)
        drain(runtime, report)
    assert report.resolved == [incident.id] and phase(runtime) == "resolved"
    [incident] = incidents(runtime)
    assert incident.state == "resolved" and incident.resolved_by == "watcher"
    assert [a[:3] for a in activations(runtime)] == [
        (incident.id, "exchange-outage", "steps"),
        (incident.id, "exchange-outage", "on_resolve"),
    ]
    with freeze_time(START + dt.timedelta(minutes=45)):
        later = run(runtime, detection.tick)
        poll(runtime, issue(status="serviceRestored", resolved=True))
    assert later.resolved == [] and len(activations(runtime)) == 2
    with runtime.database.reading() as session:
        notices = Counter((n.title, n.state, n.resolution) for n in session.scalars(select(Notice)))
    # The status page is updated: the outage notice is closed and carries the all-clear (no second, open card).
    assert notices == Counter({("Email delays", "closed", "Service is restored. Thank you for your patience."): 1})
    assert chain_ok(runtime)


def test_an_operator_resolution_is_respected(runtime: Runtime) -> None:
    outage = issue("EX1", status="serviceInterruption")
    with freeze_time(START):
        poll(runtime, outage)
    [first] = incidents(runtime)
    with freeze_time(START + dt.timedelta(minutes=2)):
        runtime.activations.resolve(incident_id=first.id, actor="alice", note="false alarm, mail flows")
        report = poll(runtime, outage)
    assert report.opened is None and phase(runtime) == "suspected"
    with runtime.database.reading() as session:
        assert session.get(WatchedService, EXO).extra["muted"] is True  # type: ignore[union-attr]
    with freeze_time(START + dt.timedelta(minutes=30)):
        assert poll(runtime, outage).opened is None
        report = poll(runtime, outage, issue("EX2", status="serviceDegradation"))  # Microsoft opens a new issue
    assert report.opened is not None and len(incidents(runtime)) == 2
    assert [a[1:3] for a in activations(runtime)].count(("exchange-outage", "on_resolve")) == 1  # alice's all-clear


def test_services_down_together_share_one_incident_and_manual_runbooks_wait_for_approval(runtime: Runtime) -> None:
    with freeze_time(START):
        report = poll(
            runtime,
            issue("MO1", service=SUITE, status="serviceDegradation"),
            issue("TM1", service="microsoft teams", status="ServiceInterruption"),
        )
    [incident] = incidents(runtime)
    assert report.opened == incident.id and sorted(incident.services) == [SUITE, TEAMS]
    assert sorted(a[1:] for a in activations(runtime)) == [
        ("exchange-outage", "steps", "queued"),  # auto, triggered by the suite
        ("m365-suite-outage", "steps", "pending_approval"),  # approval
        ("teams-outage", "steps", "pending_approval"),  # manual: the console shows it, nothing is sent
    ]
    with freeze_time(START + dt.timedelta(minutes=3)):
        joined = poll(
            runtime,
            issue("MO1", service=SUITE, status="serviceDegradation"),
            issue("TM1", service=TEAMS, status="serviceInterruption"),
            issue("EX9", service=EXO, status="serviceInterruption"),
        )
    assert joined.opened is None and joined.joined == [incident.id] and joined.activations == []
    [incident] = incidents(runtime)
    assert EXO in incident.services and "EX9" in incident.ms_issue_ids


def test_probe_quorum_with_hold_confirms_and_graph_unreachable_counts_as_one(runtime: Runtime) -> None:
    with freeze_time(START):
        run(runtime, detection.readings_received, readings=[probe("smtp", True)])
        run(
            runtime,
            detection.graph_failed,
            failure=GraphFailure("unreachable", "token endpoint: timed out"),
        )
    assert phase(runtime) == "suspected"
    with freeze_time(START + dt.timedelta(minutes=2, seconds=59)):
        run(runtime, detection.readings_received, readings=[probe("smtp", True)])
        run(runtime, detection.graph_failed, failure=GraphFailure("unreachable", "token endpoint: timed out"))
    assert phase(runtime) == "suspected" and not incidents(runtime)
    with freeze_time(START + dt.timedelta(minutes=3)):
        report = run(runtime, detection.tick)
    assert report.opened is not None and phase(runtime) == "confirmed"
    with runtime.database.reading() as session:
        voters = {s.voter for s in session.scalars(select(Signal).where(Signal.incident_id == report.opened))}
    assert voters == {"probe:smtp", "graph"}


def test_misconfigured_or_throttled_graph_votes_nothing(runtime: Runtime) -> None:
    with freeze_time(START):
        run(runtime, detection.graph_failed, failure=GraphFailure("misconfigured", "invalid_client"))
        run(runtime, detection.graph_failed, failure=GraphFailure("throttled", "HTTP 429", retry_after=120))
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(DetectionVote)) == 0
        assert detection.graph_backoff(session) == START + dt.timedelta(seconds=120)
        states = [s.status for s in session.scalars(select(Signal).order_by(Signal.id))]
    assert states == ["misconfigured", "throttled"] and phase(runtime) == "operational"


def test_a_flapping_probe_never_storms(runtime: Runtime) -> None:
    with freeze_time(START) as frozen:
        for minute in range(0, 60):
            frozen.move_to(START + dt.timedelta(minutes=minute))
            readings = [probe("smtp", True), probe("http", minute % 2 == 0)]
            run(runtime, detection.readings_received, readings=readings)
    assert not incidents(runtime) and phase(runtime) == "suspected"


def test_broken_runbooks_defer_decisions_but_readings_are_kept(runtime: Runtime) -> None:
    with freeze_time(START):
        report = run(runtime, detection.graph_polled, catalog=None, snapshot=snapshot(issue()))
    assert report.deferred and not incidents(runtime)
    with freeze_time(START + dt.timedelta(seconds=15)):
        report = run(runtime, detection.tick)
    assert report.opened is not None  # the runbooks load again: the outage is acted on


def test_confirmed_by_hand_is_only_resolved_by_hand(runtime: Runtime) -> None:
    with freeze_time(START):
        with runtime.database.transaction() as session:
            report = detection.confirm_by_hand(
                session,
                runtime.config.catalog(),
                CONFIG,
                service="exchange online",
                actor="cli:alice",
                reason="users report NDRs",
                now=utcnow(),
            )
    [incident] = incidents(runtime)
    assert report.opened == incident.id and (incident.source, incident.opened_by) == ("manual", "cli:alice")
    assert activations(runtime) == [(incident.id, "exchange-outage", "steps", "queued")]
    with freeze_time(START + dt.timedelta(hours=3)):
        assert run(runtime, detection.tick).resolved == []
    assert phase(runtime) == "recovering" and incidents(runtime)[0].state == "confirmed"
    with freeze_time(START + dt.timedelta(hours=3, minutes=1)):
        runtime.activations.resolve(incident_id=incident.id, actor="cli:alice")
        run(runtime, detection.tick)
    assert phase(runtime) == "resolved"


def test_two_watchers_at_once_open_one_incident_and_activate_once(runtime: Runtime) -> None:
    outage = issue(status="serviceInterruption")
    catalog = runtime.config.catalog()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def watcher() -> None:
        try:
            barrier.wait()
            with runtime.database.transaction() as session:
                detection.graph_polled(session, catalog, CONFIG, snapshot=snapshot(outage), now=utcnow())
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=watcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(incidents(runtime)) == 1 and len(activations(runtime)) == 1
    assert chain_ok(runtime)


def test_issue_rows_keep_what_microsoft_said(runtime: Runtime) -> None:
    with freeze_time(START):
        poll(runtime, issue("EX1", status="investigating"))
    with runtime.database.reading() as session:
        [signal] = session.scalars(select(Signal).where(Signal.kind == "issue"))
        view = detection_view.overview(session, CONFIG, utcnow())
    assert signal.status == "investigating" and signal.details["latest_post"].startswith("Title: Some users")
    exo = view["services"][0]
    assert exo["phase"] == "suspected" and exo["issues"][0]["latest_post"].endswith("mailbox server logs.")


def test_issue_dataclass_round_trip() -> None:
    parsed = parse_issue(issue())
    assert isinstance(parsed, Issue) and parsed.open


@pytest.mark.parametrize("missing", ["Yammer", ""])
def test_confirm_by_hand_validates_its_input(runtime: Runtime, missing: str) -> None:
    from failover.errors import InvalidRequest, NotFound

    with pytest.raises((NotFound, InvalidRequest)), runtime.database.transaction() as session:
        detection.confirm_by_hand(
            session,
            runtime.config.catalog(),
            CONFIG,
            service=missing or EXO,
            actor="x",
            reason="" if not missing else "r",
            now=utcnow(),
        )


def test_the_incident_page_shows_what_microsoft_said_and_the_linked_signals(
    runtime: Runtime, client: Any, auth: Any
) -> None:
    auth.login("viewer")
    with freeze_time(START):
        report = poll(runtime, issue("EX226574", status="serviceInterruption"))
    html = client.get(f"/incidents/{report.opened}").get_data(as_text=True)
    assert "Microsoft EX226574" in html and "incident/serviceInterruption" in html
    assert "Users may be unable to send or receive email" in html and "reviewing mailbox server logs" in html
    assert 'id="incident-signals"' in html and "graph:EX226574" in html
