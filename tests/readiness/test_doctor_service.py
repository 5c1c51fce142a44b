"""Doctor on our own state: migrations, heartbeats, the queue, drills, break-glass accounts, recipients;
``failover doctor``'s exit codes and JSON; the admin-only Readiness page."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import update

from failover.cli import main
from failover.clock import utcnow
from failover.db import Database
from failover.domain.readiness import Result
from failover.engine import doctor, readiness
from failover.models import User
from failover.runtime import Runtime
from failover.settings import Settings
from tests.conftest import SQLITE_ONLY, add_user


def checks(runtime: Runtime, *only: str) -> dict[str, doctor.Finding]:
    return {f.check: f for f in runtime.readiness.report(only=only).findings}


@SQLITE_ONLY
def test_an_unmigrated_database_fails_and_skips_what_reads_it(settings: Settings) -> None:
    database = Database(settings.sqlalchemy_url)
    try:
        report = doctor.run(settings, database, None, now=utcnow(), only=("service", "access"))
    finally:
        database.dispose()
    found = {f.check: f for f in report.findings}
    assert found["service.migrations"].result == Result.FAIL and "failover init" in found["service.migrations"].fix
    assert found["service.state"].result == Result.SKIPPED
    assert found["access.recent"].result == Result.SKIPPED
    assert report.exit_code() == 1


@SQLITE_ONLY
def test_migrations_current(runtime: Runtime) -> None:
    import failover.migrations

    versions = Path(failover.migrations.__path__[0]) / "versions"
    head = max(path.name.split("_")[0] for path in versions.glob("0*.py"))  # the newest migration's revision
    finding = checks(runtime, "service.migrations")["service.migrations"]
    assert finding.result == Result.OK and head in finding.detail


def test_heartbeats_alive_then_stale(runtime: Runtime) -> None:
    found = checks(runtime, "service.worker", "service.beat")
    assert found["service.worker"].result == Result.FAIL and "never" in found["service.worker"].detail
    start = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        with runtime.database.transaction() as session:
            readiness.beat(session, name="worker@a", kind="worker", now=utcnow(), pid=11)
            readiness.beat(session, name="beat@a", kind="beat", now=utcnow(), pid=12)
        found = checks(runtime, "service.worker", "service.beat")
        assert found["service.worker"].result == Result.OK and "worker@a" in found["service.worker"].detail
        assert found["service.beat"].result == Result.OK
        clock.tick(dt.timedelta(minutes=3))  # nothing wrote since: both died
        found = checks(runtime, "service.worker", "service.beat")
        assert found["service.worker"].result == Result.FAIL and "3 min ago" in found["service.worker"].detail
        assert found["service.beat"].result == Result.FAIL
        with runtime.database.transaction() as session:
            readiness.beat(session, name="beat@a", kind="beat", now=utcnow(), pid=12)
            readiness.beat(session, name="beat@b", kind="beat", now=utcnow(), pid=13)
        assert checks(runtime, "service.beat")["service.beat"].result == Result.WARN  # exactly one may run


@SQLITE_ONLY
def test_the_beat_writes_its_heartbeat_when_it_publishes(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.signals import before_task_publish

    from failover import heartbeats

    # Written on a thread of its own in the beat; here at once, so the test need not wait for it.
    monkeypatch.setattr(heartbeats, "record", lambda rt, *, name, kind: heartbeats._write(rt, name, kind))
    receiver = heartbeats.install_beat(runtime)
    try:
        before_task_publish.send(sender="failover.tasks.sweep", body=None, exchange="", routing_key="celery")
        before_task_publish.send(sender="failover.tasks.sweep", body=None, exchange="", routing_key="celery")
    finally:
        before_task_publish.disconnect(receiver)
    found = checks(runtime, "service.beat")
    assert found["service.beat"].result == Result.OK and "beat@" in found["service.beat"].detail


def test_queue_backed_up(runtime: Runtime) -> None:
    start = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        accepted, broker_ok = runtime.activations.activate(runbook_id="exchange-outage", reason="test", actor="tester")
        assert not broker_ok  # no broker in this process: the rows wait, pending
        assert checks(runtime, "service.queue")["service.queue"].result == Result.OK
        clock.tick(dt.timedelta(minutes=10))
        finding = checks(runtime, "service.queue")["service.queue"]
    assert finding.result == Result.FAIL
    assert f"{sum(accepted.counts.values())} waiting, the oldest for 10 min" == finding.detail


@SQLITE_ONLY
def test_last_drill(runtime: Runtime) -> None:
    assert checks(runtime, "service.drill")["service.drill"].result == Result.WARN
    runtime.activations.activate(runbook_id="exchange-outage", reason="drill", actor="tester", drill=True)
    assert checks(runtime, "service.drill")["service.drill"].result == Result.OK


def test_break_glass(runtime: Runtime) -> None:
    found = checks(runtime, "access")
    assert found["access.accounts"].result == Result.FAIL
    add_user(runtime, "olga", "operator")
    add_user(runtime, "ada", "admin")
    add_user(runtime, "vic", "viewer")  # viewers cannot trigger anything: not listed
    now = utcnow()
    with runtime.database.transaction() as session:
        session.execute(update(User).where(User.username == "ada").values(last_login_at=now, totp_secret="sealed"))
        session.execute(update(User).where(User.username == "olga").values(last_login_at=now - dt.timedelta(days=120)))
    found = checks(runtime, "access")
    assert found["access.recent"].result == Result.WARN
    assert found["access.recent"].items == ("olga (operator): last login or drill 120 days ago",)
    assert found["access.second_factor"].result == Result.WARN
    assert found["access.second_factor"].items == ("olga (operator)",)
    # Taking part in a drill counts as much as a login.
    runtime.activations.activate(runbook_id="exchange-outage", reason="drill", actor="olga", drill=True)
    assert checks(runtime, "access")["access.recent"].result == Result.OK


@SQLITE_ONLY
def test_personal_addresses_on_the_tenant_domain(runtime: Runtime, env: dict[str, str]) -> None:
    settings = Settings(**{**env, "FAILOVER_TENANT_DOMAINS": " Personal.example , contoso.com"})
    assert settings.tenant_domain_list == ["personal.example", "contoso.com"]
    finding = readiness.tenant_addresses(runtime.config.catalog_or_none(), settings.tenant_domain_list)
    assert finding.result == Result.WARN
    assert "Alice Example (alice): a***@personal.example" in finding.items  # listed, masked
    assert not any("alice@" in item for item in finding.items)
    clean = readiness.tenant_addresses(runtime.config.catalog_or_none(), ["contoso.com"])
    assert clean.result == Result.OK
    unset = readiness.tenant_addresses(runtime.config.catalog_or_none(), [])
    assert unset.result == Result.SKIPPED and "FAILOVER_TENANT_DOMAINS" in unset.detail


@SQLITE_ONLY
def test_one_crashing_area_does_not_hide_the_others(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: doctor.Context) -> list[doctor.Finding]:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(doctor, "AREAS", [("twilio", broken), *[a for a in doctor.AREAS if a[0] != "twilio"]])
    found = {f.check: f for f in runtime.readiness.report().findings}
    assert found["twilio.error"].result == Result.FAIL and found["twilio.error"].detail == "RuntimeError: boom"
    assert "service.migrations" in found and "sendgrid.key" in found


# -- the command ------------------------------------------------------------------------------


@SQLITE_ONLY
def test_doctor_exit_codes_and_json(runtime: Runtime, runner: CliRunner) -> None:
    result = runner.invoke(main, ["doctor"])
    assert result.exit_code == 1, result.output  # no worker, no beat, no account
    assert "FAIL" in result.output and "fix: start one: `failover worker`" in result.output
    assert runner.invoke(main, ["doctor", "--only", "service.migrations"]).exit_code == 0
    assert runner.invoke(main, ["doctor", "--only", "service.drill"]).exit_code == 0  # a warning only
    assert runner.invoke(main, ["doctor", "--only", "service.drill", "--strict"]).exit_code == 2
    result = runner.invoke(main, ["doctor", "--json"])
    data = json.loads(result.output)
    assert data["result"] == "fail" and result.exit_code == 1
    ids = {item["check"] for item in data["checks"]}
    assert {"service.migrations", "service.worker", "twilio.credentials", "sendgrid.key", "graph.token"} <= ids
    assert all(set(item) == {"check", "area", "what", "result", "detail", "fix", "items"} for item in data["checks"])


# -- the page -----------------------------------------------------------------------------------


@SQLITE_ONLY
def test_the_readiness_page_is_for_admins(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("operator")
    assert client.get("/admin/readiness").status_code == 403
    auth.logout()
    auth.login("admin")
    page = client.get("/admin/readiness")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="check-service-worker"' in html and "failover worker" in html  # the fix is shown
    assert "not ready" in html and "No canary has run yet." in html
