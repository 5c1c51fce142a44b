"""After-action reports and drills (issue 16): a 500-person drill with replies, its page, its PDF, the drills page.

The activation is planned by the real engine (no worker) and its outcome
written in a few bulk UPDATEs with known times, so every number of the report
can be worked out by hand (see the comments).
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func, insert, select, update

from failover.db import migrate
from failover.domain import sms
from failover.models import Activation, Answer, Delivery, DrillRun, EscalationTimer
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from failover.web import reports as web_reports
from tests.conftest import PROVIDER_VARIABLES, AuthActions, make_people, write_config

pytestmark = pytest.mark.integration

DRILL = textwrap.dedent("""\
    id: roll-call
    title: Roll call
    description: Everyone answers by SMS; mail as well.
    trigger: {activation: manual}
    drill_group: all-staff
    steps:
      - {channel: sms, to: [group:all-staff], text: "Roll call. Reply 1 if OK, 2 if you need help.", check_in: true}
      - {channel: email, to: [group:all-staff], subject: "Roll call", text: "Please answer the SMS."}
    escalation:
      - {after: 15m, if: unacknowledged, channel: sms, to: [group:it-leads], text: "Staff are silent."}
    """)
T0 = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)


def ids(first: int, last: int) -> list[str]:
    return [f"p{n:05d}" for n in range(first, last + 1)]


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _runtime(tmp_path: Path, people: int) -> Runtime:
    crowd = make_people(people, groups=("all-staff",))
    for index, person in enumerate(crowd):
        person["groups"] = ["all-staff", "berlin" if index < 300 else "london"]
    crowd[0]["groups"] = [*crowd[0]["groups"], "it-leads"]  # type: ignore[misc]
    books = tmp_path / "books"
    (books / "templates").mkdir(parents=True)
    (books / "roll-call.yaml").write_text(DRILL)
    groups = {name: {"description": name} for name in ("all-staff", "it-leads", "berlin", "london")}
    config, _ = write_config(tmp_path, crowd, runbooks_from=books, groups=groups)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in PROVIDER_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in {
            "FAILOVER_DATA_DIR": str(tmp_path / "var"),
            "FAILOVER_SECRET_KEY": "test-secret-key",
            "FAILOVER_CONFIG_DIR": str(config),
            "FAILOVER_RUNBOOKS_DIR": str(tmp_path / "runbooks"),
            "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'reports.db'}",
            "FAILOVER_SMS_SEGMENT_PRICE": "0.0079",
            "FAILOVER_EMAIL_PRICE": "0.001",
        }.items():
            monkeypatch.setenv(name, value)
        runtime = Runtime(load_settings())
    migrate(runtime.database)
    return runtime


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, FlaskClient]]:
    runtime, client = drilled(tmp_path_factory.mktemp("drill"))
    yield runtime, client
    runtime.close()


def drilled(tmp_path: Path) -> tuple[Runtime, FlaskClient]:
    """500 people (300 in Berlin, 200 in London) drilled at T0; receipts and answers at known times.

    Also what docs/drill-report.png is taken from (see README, "Drills and reports").
    """
    runtime = _runtime(tmp_path, 500)
    with freeze_time(T0):
        accepted, _ = runtime.activations.activate(
            runbook_id="roll-call", reason="monthly drill", actor="olga", drill=True
        )
    activation_id = accepted.activation_id
    with runtime.database.transaction() as session:
        mine = (Delivery.activation_id == activation_id, Delivery.step.like("steps.%"))
        # SMS to p00000-p00249 left at T0+5s, to the others at T0+65s; mail at T0+30s.
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "sms")
            .values(status="delivered", transport="twilio", sent_at=at(65), receipt="delivered", batch_id=None)
        )
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "sms", Delivery.person_id < "p00250")
            .values(sent_at=at(5))
        )
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "email")
            .values(status="sent", transport="sendgrid", sent_at=at(30), batch_id=None)
        )
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "email", Delivery.person_id < "p00100")
            .values(status="delivered", receipt="delivered")
        )
        # 30 London SMS failed for good: 20 unreachable handsets, 10 unknown numbers.
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "sms", Delivery.person_id.in_(ids(480, 499)))
            .values(status="failed", error_code="30003", last_error="Unreachable destination handset")
        )
        session.execute(
            update(Delivery)
            .where(*mine, Delivery.channel == "sms", Delivery.person_id.in_(ids(470, 479)))
            .values(status="failed", error_code="30005", last_error="Unknown destination handset")
        )
        # Berlin: 240 acknowledge at T0+60s .. T0+299s; London: 100 at T0+400s .. T0+499s, 10 need help.
        rows = [(p, "ack", at(60 + i)) for i, p in enumerate(ids(0, 239))]
        rows += [(p, "ack", at(400 + i)) for i, p in enumerate(ids(300, 399))]
        rows += [(p, "need_help", at(600)) for p in ids(400, 409)]
        session.execute(
            insert(Answer),
            [
                {"activation_id": activation_id, "person_id": p, "answer": a, "via": "sms", "first_at": t}
                | {"answered_at": t}
                for p, a, t in rows
            ],
        )
        session.execute(
            update(EscalationTimer)
            .where(EscalationTimer.activation_id == activation_id)
            .values(fired_at=at(900), outcome="paged", paged=1)
        )
    client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, runtime).login("viewer")
    return runtime, client


def cell(page: str, element: str) -> str:
    found = re.search(rf'id="{element}">(.*?)</td>', page, re.S)
    assert found is not None, element
    return " ".join(found.group(1).split())


def group_row(page: str, group: str) -> list[str]:
    found = re.search(rf'<tr data-group="{re.escape(group)}">(.*?)</tr>', page, re.S)
    assert found is not None, group
    return [" ".join(c.split()) for c in re.findall(r"<td>(.*?)</td>", found.group(1), re.S)]


def test_a_500_person_drill_report_counts_everyone_by_group_and_channel(drill: tuple[Runtime, FlaskClient]) -> None:
    runtime, client = drill
    response = client.get("/activations/1/report")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert cell(page, "r-targeted") == "500 people"
    assert cell(page, "r-reached") == "470 (94.0 %)"  # all but the 30 failed SMS; mail to them has no receipt
    assert cell(page, "r-acked") == "340 (68.0 %)"
    assert cell(page, "r-need-help") == "10"
    assert cell(page, "r-first") == "5 s after acceptance"
    assert cell(page, "r-last") == "1 min 05 s"
    # 250 of 500: the 240 Berlin answers (60-299 s), then the 10th London one at 409 s. 450 never came.
    assert cell(page, "r-ack50") == "6 min 49 s"
    assert cell(page, "r-ack90") == "–"
    assert group_row(page, "berlin") == ["berlin", "300", "300 (100.0 %)", "240 (80.0 %)", "0", "0", "0"]
    assert group_row(page, "london") == ["london", "200", "170 (85.0 %)", "100 (50.0 %)", "10", "30", "0"]
    sms_row = re.search(r'<tr data-channel="sms">(.*?)</tr>', page, re.S)
    email_row = re.search(r'<tr data-channel="email">(.*?)</tr>', page, re.S)
    assert sms_row and re.findall(r"<td>(.*?)</td>", sms_row.group(1)) == ["sms", "500", "470", "30", "0", "500", "470"]
    assert email_row and re.findall(r"<td>(.*?)</td>", email_row.group(1)) == ["email", "500", "100", "0", "400"] + [
        "500",
        "100",
    ]
    failures = re.search(r'id="report-failures">(.*?)</section>', page, re.S)
    assert failures is not None
    assert re.findall(r"<td>(.*?)</td>", failures.group(1)) == [
        "30003: Unreachable destination handset",
        "20",
        "30005: Unknown destination handset",
        "10",
    ]
    escalations = re.search(r'id="report-escalations">(.*?)</section>', page, re.S)
    assert escalations is not None and "<td>paged</td>" in escalations.group(1)
    # Cost: every SMS (one segment each) and every mail was handed to a provider, the escalation page too.
    with runtime.database.reading() as session:
        bodies = session.scalars(select(Delivery.body).where(Delivery.channel == "sms")).all()
    segments = sum(sms.analyse(body).segments for body in bodies)
    assert segments == 500  # the escalation page was never sent (it has no sent_at): not billed
    expected = (Decimal("0.0079") * 500).quantize(Decimal("0.01")) + Decimal("0.50")
    assert cell(page, "r-cost").endswith(f"{expected} USD") and "500 SMS segments, 500 e-mails" in cell(page, "r-cost")
    # The chart: one line per group, and nobody's number or address anywhere.
    chart = re.search(r'id="report-chart">(.*?)</section>', page, re.S)
    assert chart is not None and chart.group(1).count("<polyline") == 5
    legend = re.findall(r'font-size="11">([^<]+)</text>', chart.group(1))
    assert legend == ["(everyone)", "all-staff", "berlin", "it-leads", "london"]
    assert "@personal.example" not in page and "+1202555" not in page


def test_the_report_pdf_is_produced_from_the_same_numbers(
    drill: tuple[Runtime, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = drill
    seen: list[str] = []
    render = web_reports.render_pdf

    def spy(html: str) -> bytes:
        seen.append(html)
        return render(html)

    monkeypatch.setattr(web_reports, "render_pdf", spy)
    response = client.get("/activations/1/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "activation-1-report.pdf" in response.headers["Content-Disposition"]
    pdf = response.data
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 10_000
    html = seen[0]
    assert cell(html, "r-acked") == "340 (68.0 %)" and "<svg" in html and "DRILL: not a real incident" in html
    from weasyprint import HTML

    pages = HTML(string=html).render().pages  # the laid-out document the PDF was written from
    assert len(pages) >= 2  # summary, chart, tables: more than one A4 page


def test_the_drills_page_compares_drills(drill: tuple[Runtime, FlaskClient]) -> None:
    _, client = drill
    page = client.get("/drills").get_data(as_text=True)
    row = re.search(r'<tr data-activation="1">(.*?)</tr>', page, re.S)
    assert row is not None
    assert re.findall(r"<td>(.*?)</td>", row.group(1))[:5] == [
        "2026-11-03 09:00 UTC",
        "roll-call",
        "500",
        "94.0 %",
        "68.0 %",
    ]
    chart = re.search(r'id="drills-chart">(.*?)</section>', page, re.S)
    assert chart is not None and chart.group(1).count("<polyline") == 2


def test_a_scheduled_drill_starts_once_in_its_window_and_never_late(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, 20)
    (runtime.settings.config_dir / "drills.yaml").write_text(
        textwrap.dedent("""\
            drills:
              - name: tuesday-roll-call
                runbook: roll-call
                cron: "0 10 * * 2"   # Tuesdays 10:00 UTC
                window: 2h
                message: Monthly roll call
            """)
    )
    try:
        tuesday = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)  # a Tuesday
        with freeze_time(tuesday - dt.timedelta(minutes=1)):
            assert runtime.drills.run_due()["started"] == []
        with freeze_time(tuesday + dt.timedelta(minutes=50)):  # beat was down at 10:00: still in the window
            started = runtime.drills.run_due()["started"]
            assert [s["schedule"] for s in started] == ["tuesday-roll-call"]
            assert runtime.drills.run_due()["started"] == []  # the same slot never runs twice
        with freeze_time(dt.datetime(2026, 11, 10, 12, 1, tzinfo=dt.UTC)):  # the next Tuesday, too late
            assert runtime.drills.run_due()["started"] == []
        with runtime.database.reading() as session:
            activation = session.get(Activation, started[0]["activation"])
            assert activation is not None and activation.drill and activation.message == "Monthly roll call"
            assert session.scalar(select(func.count()).select_from(DrillRun)) == 1
            texts = session.scalars(select(Delivery.body).where(Delivery.channel == "sms")).all()
            assert len(texts) == 20 and all(text.startswith("[DRILL]") for text in texts)
        with freeze_time(tuesday + dt.timedelta(minutes=50)):
            assert runtime.drills.overview()[0]["next"] == "2026-11-10 10:00 UTC"
    finally:
        runtime.close()


def test_a_scheduled_drill_that_cannot_start_is_recorded_once(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, 5)
    (runtime.settings.config_dir / "drills.yaml").write_text(
        'drills:\n  - {name: ghost, runbook: no-such-runbook, cron: "*/5 * * * *"}\n'
    )
    try:
        with freeze_time(dt.datetime(2026, 11, 3, 10, 6, tzinfo=dt.UTC)):
            assert runtime.drills.run_due()["failed"] == ["ghost"]
            assert runtime.drills.run_due()["failed"] == []
        with runtime.database.reading() as session:
            run = session.scalars(select(DrillRun)).one()
            assert run.outcome == "failed" and "no-such-runbook" in run.detail
            assert run.slot == dt.datetime(2026, 11, 3, 10, 5, tzinfo=dt.UTC)
    finally:
        runtime.close()


def test_a_real_incidents_report_shows_microsofts_lag(
    tmp_path: Path, drill: tuple[Runtime, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover.models import Incident, ServiceIssue

    runtime = _runtime(tmp_path, 5)
    try:
        with freeze_time(T0):
            accepted, _ = runtime.activations.activate(runbook_id="roll-call", reason="Exchange is down", actor="olga")
        activation_id = accepted.activation_id
        with runtime.database.transaction() as session:
            activation = session.get(Activation, activation_id)
            assert activation is not None and not activation.drill
            incident = session.get(Incident, activation.incident_id)
            assert incident is not None
            incident.opened_at = T0
            incident.ms_issue_ids = ["EX1001"]
            session.add(
                ServiceIssue(
                    id="EX1001",
                    service="Exchange Online",
                    title="Users can't send mail",
                    status="serviceDegradation",
                    classification="incident",
                    started_at=T0 - dt.timedelta(minutes=5),
                    first_seen_at=T0 + dt.timedelta(minutes=20),
                    seen_at=T0 + dt.timedelta(minutes=20),
                )
            )
        client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
        AuthActions(client, runtime).login("viewer")
        sentence = "We knew 20 minute(s) before Microsoft said so (EX1001)."
        page = client.get(f"/activations/{activation_id}/report").get_data(as_text=True)
        assert 'id="report-microsoft-lag"' in page and sentence in page
        seen: list[str] = []
        monkeypatch.setattr(web_reports, "render_pdf", lambda html: seen.append(html) or b"%PDF-")
        assert client.get(f"/activations/{activation_id}/report.pdf").status_code == 200
        assert sentence in seen[0]
    finally:
        runtime.close()
    # A drill's report has no Microsoft side.
    _, drill_client = drill
    assert 'id="report-microsoft-lag"' not in drill_client.get("/activations/1/report").get_data(as_text=True)
