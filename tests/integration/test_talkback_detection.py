"""Staff reports in the detection engine, Microsoft's lag per incident, and the status page's report button.

On SQLite and PostgreSQL (the ``runtime`` fixture), time moved by freezegun:
the 9:05 a.m. scenario - the SMTP probe fails at 9:04, five people text
DOWN MAIL from 9:05, failover confirms at 9:08:40 (hold 3m), Microsoft lists
EX226574 at 9:39 with a startDateTime of 9:00.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from failover.clock import utcnow
from failover.domain.detection.config import ConfirmPolicy, DetectionConfig
from failover.domain.detection.signals import GraphSnapshot, Reading
from failover.domain.report_policy import ReportsPolicy
from failover.domain.staff_reports import parse
from failover.engine import audit, microsoft_lag, staff_reports
from failover.engine.detection import decisions as detection
from failover.engine.detection import view as detection_view
from failover.models import Incident, StaffReport
from failover.runtime import Runtime
from failover.sources.graph import parse_issue
from tests.conftest import AuthActions
from tests.fakes.microsoft import issue

EXO, TEAMS, SUITE = "Exchange Online", "Microsoft Teams", "Microsoft 365 suite"
START = dt.datetime(2026, 3, 2, 9, 4, tzinfo=dt.UTC)
REPORTS = ReportsPolicy(suite=SUITE, aliases={EXO: ("MAIL",), TEAMS: ("TEAMS",)}, min_reporters=5)
CONFIG = DetectionConfig(
    watch=(EXO, TEAMS, SUITE),
    confirm=ConfirmPolicy(probe_quorum=2, hold=dt.timedelta(minutes=3), recover_hold=dt.timedelta(minutes=10)),
    reports=REPORTS,
)
PHONES = {"alice": "+12025550101", "bob": "+12025550102", "carol": "+12025550103"}


def report(runtime: Runtime, person: str | None, body: str = "DOWN MAIL", sender: str = "+12025550199") -> str | None:
    parsed = parse(body, REPORTS)
    assert parsed is not None
    with runtime.database.transaction() as session:
        received = staff_reports.from_sms(
            session, runtime.config.catalog(), CONFIG, parsed=parsed, sender=sender, person_id=person, now=utcnow()
        )
    for batch_id in received.batch_ids:
        runtime.delivery.send_batch(batch_id)
    return received.text


def test_the_905_scenario_confirms_before_microsoft_and_measures_the_lag(
    runtime: Runtime, client: FlaskClient, auth: AuthActions
) -> None:
    with freeze_time(START) as clock:
        probe = Reading("probe:exchange-mx", "probe:exchange-mx", EXO, True, "RCPT TO: 451 4.3.2", kind="probe")
        with runtime.database.transaction() as session:
            detection.readings_received(session, runtime.config.catalog(), CONFIG, readings=[probe], now=utcnow())
        clock.tick(dt.timedelta(minutes=1))
        answers = []
        for person in ("alice", "bob", "carol", "dan"):
            answers.append(report(runtime, person))
            clock.tick(dt.timedelta(seconds=10))
        assert answers == [REPORTS.reply] * 4
        assert report(runtime, "alice") is None  # her second report: no second answer
        assert report(runtime, None) is None  # nobody we know: counted for nothing (the reply path answers)
        assert report(runtime, "alice", "DOWN") is None  # a bare DOWN is about the suite, and she has had her answer
        with runtime.database.reading() as session:
            overview = detection_view.overview(session, CONFIG, utcnow())
        shown = {s["service"]: s["reports"] for s in overview["services"]}
        assert shown[EXO]["now"] == 4 and shown[SUITE]["now"] == 1 and shown[TEAMS]["now"] == 0

        report(runtime, "erin")  # 9:05:40, the fifth distinct reporter
        assert not _incidents(runtime)  # the reports source must hold for `hold` like any probe
        clock.tick(dt.timedelta(minutes=3))
        with runtime.database.transaction() as session:
            decided = detection.tick(session, runtime.config.catalog(), CONFIG, now=utcnow())
        for batch_id in decided.batch_ids:
            runtime.delivery.send_batch(batch_id)
        [incident] = _incidents(runtime)
        assert incident.opened_at == START + dt.timedelta(minutes=4, seconds=40)
        assert "Thanks - we know: Exchange Online outage" in (report(runtime, "frank") or "")

        clock.move_to(dt.datetime(2026, 3, 2, 9, 39, tzinfo=dt.UTC))
        listed = issue("EX226574", status="serviceDegradation", classification="incident")
        listed["startDateTime"] = "2026-03-02T09:00:00Z"
        with runtime.database.transaction() as session:
            snapshot = GraphSnapshot(tuple(i for i in [parse_issue(listed)] if i is not None), {}, 2)
            detection.graph_polled(session, runtime.config.catalog(), CONFIG, snapshot=snapshot, now=utcnow())
        with runtime.database.reading() as session:
            lag = microsoft_lag.report(session, incident.id, utcnow())
            assert audit.verify(session).ok
            assert session.scalar(select(StaffReport.id).where(StaffReport.reporter.like("+%"))) is None
        assert lag is not None
        assert (lag["first_evidence_source"], lag["ms_issue_id"], lag["ahead_minutes"]) == (
            "probe:exchange-mx",
            "EX226574",
            30,
        )
        assert lag["first_evidence_at"] == START.isoformat() and lag["ms_started_at"] == "2026-03-02T09:00:00+00:00"
        assert lag["sentence"] == "We knew 30 minute(s) before Microsoft said so (EX226574)."

        auth.login("viewer")
        page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
        assert "We knew 30 minute(s) before Microsoft said so (EX226574)." in page
        dashboard = client.get("/").get_data(as_text=True)  # the repo's detection.yaml has reports: on
        assert "Staff reports: <b>0</b> now (fails at 5)" in dashboard  # 9:39: the 9:05 reports are history
        assert "before: 0 0 6 0 0" in dashboard  # six people reported mail in the 8:59-9:09 window


def test_an_incident_microsoft_has_not_listed_says_so(runtime: Runtime) -> None:
    with freeze_time(START) as clock:
        with runtime.database.transaction() as session:
            detection.confirm_by_hand(
                session,
                runtime.config.catalog(),
                CONFIG,
                service=EXO,
                actor="alice",
                reason="451 4.3.2 everywhere",
                now=START,
            )
        clock.tick(dt.timedelta(minutes=12))
        [incident] = _incidents(runtime)
        with runtime.database.reading() as session:
            lag = microsoft_lag.for_incident(session, incident.id)
        assert lag is not None and lag.ahead_minutes is None
        assert lag.sentence(utcnow()) == "Microsoft has listed no issue yet, 12 minute(s) after we confirmed."


def test_the_report_button_counts_one_reporter_per_client_and_throttles(runtime: Runtime, client: FlaskClient) -> None:
    answers = [client.post("/status/report", data={"service": EXO}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "Thanks - we are on it" in answers[0].get_data(as_text=True)
    assert client.post("/status/report", data={}, headers={"Accept": "application/json"}).json == {
        "message": "Thanks - your report is already counted."
    }  # still throttled: no service named means the suite, and the client is over its limit
    with runtime.database.reading() as session:
        rows = session.scalars(select(StaffReport)).all()
    assert len(rows) == 3 and len({r.reporter for r in rows}) == 1 and rows[0].reporter.startswith("web:")
    assert rows[0].via == "web"
    other = client.post("/status/report", data={"service": EXO}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    unknown = client.post("/status/report", data={"service": "Yammer"}, environ_base={"REMOTE_ADDR": "10.0.0.10"})
    assert unknown.status_code == 400 and "choose the service" in unknown.get_data(as_text=True)


def test_the_live_status_page_offers_the_report_button_and_the_snapshot_does_not(
    runtime: Runtime, client: FlaskClient
) -> None:
    page = client.get("/status").get_data(as_text=True)
    assert 'id="report-problem"' in page and 'action="/status/report"' in page
    assert f'<option value="{EXO}">' in page
    with runtime.database.reading() as session:
        files = runtime.status.snapshot(session)
    [index] = [f for f in files if f.path == "index.html"]
    assert b"report-problem" not in index.body  # a snapshot is read where this service may not answer


def _incidents(runtime: Runtime) -> list[Incident]:
    with runtime.database.reading() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


pytestmark = pytest.mark.integration
