"""Canaries end to end: real SDKs against the fakes, receipts through the Flask app, time with freezegun."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from failover.db import migrate
from failover.domain.readiness import Result
from failover.engine import audit, canary
from failover.models import AuditEvent, CanaryRun
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import SQLITE_ONLY, AuthActions, provider_env
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw
from tests.fakes.twilio import Failure

pytestmark = SQLITE_ONLY

PUBLIC_URL = "https://failover.example.org"
CANARY_PHONE = "+12025550142"
CANARY_EMAIL = "canary.keeper@personal.example"
START = dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.UTC)


@dataclass
class Wired:
    runtime: Runtime
    client: Any
    twilio: tw.FakeTwilio
    sendgrid: sg.FakeSendGrid

    def runs(self) -> dict[str, CanaryRun]:
        with self.runtime.database.reading() as session:
            return {run.channel: run for run in session.scalars(select(CanaryRun).order_by(CanaryRun.id))}

    def email_delivered(self) -> None:
        events = self.sendgrid.events("delivered", to=CANARY_EMAIL)
        status, _ = self.sendgrid.post_events(f"{PUBLIC_URL}/webhooks/sendgrid/events", events)
        assert status == 200


@pytest.fixture
def wired(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    fake_twilio: tw.FakeTwilio,
    fake_sendgrid: sg.FakeSendGrid,
) -> Iterator[Wired]:
    from failover.web import create_app

    values = {
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_DATABASE_URL": database_url,
        "FAILOVER_PUBLIC_URL": PUBLIC_URL,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake_sendgrid.public_key,
        "FAILOVER_CANARY_SMS": CANARY_PHONE,
        "FAILOVER_CANARY_EMAIL": CANARY_EMAIL,
        "FAILOVER_CANARY_TIMEOUT": "900",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    app = create_app(runtime=runtime, test_config={"TESTING": True})
    client = app.test_client()
    fake_twilio.poster = tw.flask_poster(client)
    fake_sendgrid.poster = sg.flask_poster(client)
    yield Wired(runtime, client, fake_twilio, fake_sendgrid)
    runtime.close()


def test_a_canary_round_that_arrives(wired: Wired) -> None:
    with freeze_time(START, tick=True) as clock:
        result = wired.runtime.readiness.canary_start()
        assert len(result.started) == 2 and not result.failed
        (sms,) = wired.twilio.messages
        assert sms["to"] == CANARY_PHONE and sms["body"] == canary.TEXT
        assert sms["_status_callback"].endswith("/webhooks/twilio/status?delivery=0")  # no ledger row
        (mail,) = wired.sendgrid.sends
        assert mail["subject"] == canary.SUBJECT and mail["personalizations"][0]["to"][0]["email"] == CANARY_EMAIL
        assert {run.outcome for run in wired.runs().values()} == {None}  # waiting for receipts
        clock.tick(dt.timedelta(seconds=40))
        assert wired.twilio.deliver() == [204, 204]  # sent, then delivered, signed as Twilio signs
        wired.email_delivered()
        result = wired.runtime.readiness.canary_check()
    assert not result.failed and result.alerts == 0
    runs = wired.runs()
    assert runs["sms"].outcome == "ok" and runs["email"].outcome == "ok"
    assert 39 <= int(runs["sms"].detail.removeprefix("delivered after ").removesuffix(" s")) <= 45
    assert runs["sms"].transport == "twilio"
    assert runs["sms"].target != CANARY_PHONE  # stored masked
    assert len(wired.twilio.messages) == 1 and len(wired.sendgrid.sends) == 1  # no alert
    with freeze_time(START + dt.timedelta(minutes=5)):
        finding = {f.check: f for f in wired.runtime.readiness.report(only=("service.canary",)).findings}[
            "service.canary"
        ]
    assert finding.result == Result.OK and finding.detail.startswith("2 of 2 arrived")
    with wired.runtime.database.reading() as session:
        actions = [row.action for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert audit.verify(session).ok
    assert actions.count("canary.sent") == 2 and actions.count("canary.ok") == 2


def test_a_canary_whose_receipt_never_arrives(wired: Wired) -> None:
    with freeze_time(START, tick=True) as clock:
        wired.runtime.readiness.canary_start()
        wired.email_delivered()  # the mail arrives; Twilio never calls back about the SMS
        clock.tick(dt.timedelta(minutes=14))
        early = wired.runtime.readiness.canary_check()
        assert not early.failed and wired.runs()["sms"].outcome is None  # still within its 15 minutes
        clock.tick(dt.timedelta(minutes=2))
        result = wired.runtime.readiness.canary_check()
        assert len(result.failed) == 1 and result.alerts == 1
        again = wired.runtime.readiness.canary_check()  # the next check alerts no more
        assert again.alerts == 0
    runs = wired.runs()
    assert runs["email"].outcome == "ok"
    assert runs["sms"].outcome == "failed" and runs["sms"].alerted
    assert runs["sms"].detail == "no delivery receipt within 15 min (last heard: none)"
    # The alert went by e-mail, the channel that still works, never by the SMS that failed.
    assert len(wired.twilio.messages) == 1
    alert = wired.sendgrid.sends[-1]
    assert alert["subject"] == "failover canary FAILED"
    assert "sms via twilio" in alert["content"][0]["value"] and CANARY_PHONE not in alert["content"][0]["value"]
    with freeze_time(START + dt.timedelta(minutes=20)):
        finding = {f.check: f for f in wired.runtime.readiness.report(only=("service.canary",)).findings}[
            "service.canary"
        ]
    assert finding.result == Result.FAIL and finding.detail.startswith("1 of 2 arrived")
    assert any("no delivery receipt" in item for item in finding.items)


def test_a_canary_the_provider_refuses_fails_at_once(wired: Wired) -> None:
    wired.twilio.number_failures[CANARY_PHONE] = Failure(400, 21408, "Permission to send an SMS has not been enabled")
    result = wired.runtime.readiness.canary_start()
    assert len(result.failed) == 1 and result.alerts == 1
    run = wired.runs()["sms"]
    assert run.outcome == "failed" and "refused" in run.detail
    assert wired.sendgrid.sends[-1]["subject"] == "failover canary FAILED"


def test_a_canary_reported_undelivered(wired: Wired) -> None:
    wired.twilio.outcomes[CANARY_PHONE] = ("undelivered", 30003)
    wired.runtime.readiness.canary_start()
    wired.twilio.deliver()
    result = wired.runtime.readiness.canary_check()
    assert len(result.failed) == 1
    assert wired.runs()["sms"].detail == "the provider reports undelivered (30003)"


def test_canary_history_on_the_readiness_page(wired: Wired) -> None:
    AuthActions(wired.client, wired.runtime).login("admin")
    page = wired.client.get("/admin/readiness")
    html = page.get_data(as_text=True)
    assert "No canary has run yet." in html and "every 24.0 h" in html
    token = html.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert wired.client.post("/admin/readiness/canaries", data={"csrf_token": token}).status_code == 302
    html = wired.client.get("/admin/readiness").get_data(as_text=True)
    assert html.count("via twilio") == 1 and html.count("via sendgrid") == 1 and "waiting" in html
    assert CANARY_PHONE not in html and CANARY_EMAIL not in html


def test_canaries_are_scheduled_only_with_targets(env: dict[str, str], runtime: Runtime, wired: Wired) -> None:
    from failover.celery_app import TaskName, create_celery

    assert "canary-start" not in create_celery(runtime).conf.beat_schedule  # no targets: nothing scheduled
    schedule = create_celery(wired.runtime).conf.beat_schedule
    assert schedule["canary-start"]["task"] == TaskName.CANARY_START.value
    assert schedule["canary-start"]["schedule"] == 86400.0 and schedule["canary-check"]["schedule"] == 60.0
