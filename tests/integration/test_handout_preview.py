"""The preview says how long the SMS take to reach phones (FAILOVER_TWILIO_SENDER_MPS), in the console, the API
and the CLI alike; doctor warns when the declared senders take too long for the largest runbook (issue 17)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from failover.cli import main
from failover.clock import utcnow
from failover.domain.readiness import Result
from failover.engine import doctor
from failover.runtime import Runtime
from failover.settings import Settings, load_settings
from tests.conftest import AuthActions, provider_env
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration.test_api import make_api
from tests.integration.test_console import preview

# exchange-outage texts oncall (3 people, one GSM-7 segment each): 3 s at 1 MPS, 0.16 s of our sending at 50.
DECLARED = "3 SMS at 1 MPS: about 3 s after we finish sending (we send them in 1 s)."


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite: the estimate is pure; what is tested is that every preview shows it."""
    yield f"sqlite:///{tmp_path / 'failover.db'}"


@pytest.fixture
def mps() -> str | None:
    """FAILOVER_TWILIO_SENDER_MPS; a test parametrizes it with None for "not declared"."""
    return "1"


@pytest.fixture
def settings(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
    mps: str | None,
) -> Settings:
    """Twilio and SendGrid configured (the SMS really leave, not to the outbox)."""
    values = {**provider_env(fake_twilio, fake_sendgrid), "FAILOVER_DATABASE_URL": database_url}
    if mps is not None:
        values["FAILOVER_TWILIO_SENDER_MPS"] = mps
    for name, value in values.items():
        monkeypatch.setenv(name, value)
        env[name] = value
    return load_settings()


def test_the_console_preview_says_when_the_last_sms_leaves_twilio(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    html = preview(client)[0].get_data(as_text=True)
    match = re.search(r'<p id="handout">(.*?)</p>', html, re.S)
    assert match is not None, html
    assert match.group(1) == f"<b>Reaching phones:</b> {DECLARED}"


@pytest.mark.parametrize("mps", [None])
def test_undeclared_the_console_names_the_setting(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    html = preview(client)[0].get_data(as_text=True)
    assert "3 SMS: we send them in 1 s; how long Twilio then takes to hand them out is not known: set " in html
    assert "FAILOVER_TWILIO_SENDER_MPS to your senders&#39; total messages per second (not declared)." in html


def test_the_api_dry_run_carries_the_estimate(app: Flask, runtime: Runtime) -> None:
    api = make_api(app, runtime, "automation", "operator")
    data = api("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "x", "dry_run": True}).get_json()
    handout = data["handout"]
    assert handout["messages"] == 3 and handout["segments"] == 3 and handout["sender_mps"] == 1.0
    assert handout["provider_s"] == pytest.approx(3.0) and handout["send_s"] == pytest.approx(0.159)
    assert handout["after_send_s"] == pytest.approx(2.841) and handout["vonage_s"] is None
    assert handout["text"] == DECLARED


@pytest.mark.parametrize("mps", [None])
def test_undeclared_the_api_says_null_and_why(app: Flask, runtime: Runtime) -> None:
    api = make_api(app, runtime, "automation", "operator")
    data = api("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "x", "dry_run": True}).get_json()
    assert data["handout"]["sender_mps"] is None and data["handout"]["provider_s"] is None
    assert "FAILOVER_TWILIO_SENDER_MPS" in data["handout"]["text"]


def test_the_cli_dry_run_prints_it(runtime: Runtime) -> None:  # runtime: a migrated database
    out = CliRunner().invoke(main, ["activate", "exchange-outage", "--reason", "x", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert f"reaching phones: {DECLARED}" in out.output


# -- doctor ----------------------------------------------------------------------------------------------


def sender_rate(runtime: Runtime, mps: str | None, monkeypatch: pytest.MonkeyPatch) -> doctor.Finding:
    if mps is None:
        monkeypatch.delenv("FAILOVER_TWILIO_SENDER_MPS", raising=False)
    else:
        monkeypatch.setenv("FAILOVER_TWILIO_SENDER_MPS", mps)
    settings = load_settings()
    catalog = runtime.config.catalog()  # puts contacts.yaml into the people table
    context = doctor.Context(settings, runtime.database, catalog, utcnow(), doctor._migrations(runtime.database))
    (finding,) = doctor.sender_rate(context)
    return finding


def test_doctor_warns_when_the_largest_runbook_takes_over_15_minutes(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = sender_rate(runtime, "1", monkeypatch)
    assert fast.check == "twilio.sender_rate" and fast.result == Result.OK
    largest = re.search(r"^([\w-]+): (\d+) SMS at 1 MPS take about (\d+) s to hand out$", fast.detail)
    assert largest is not None, fast.detail
    people = int(largest.group(2))
    assert people == 7  # m365-suite-outage texts all-staff: the seven people with a number

    slow = sender_rate(runtime, str(people / 1000), monkeypatch)  # 1,000 s: just over 15 minutes
    assert slow.result == Result.WARN
    assert slow.detail == f"{largest.group(1)}: 7 SMS at 0.007 MPS take about 17 minutes to hand out " + (
        "(more than 15 minutes; at least one segment each)"
    )
    assert slow.fix.startswith("add senders") and slow.fix.endswith("FAILOVER_TWILIO_SENDER_MPS reaches 0.1 MPS")

    unset = sender_rate(runtime, None, monkeypatch)
    assert unset.result == Result.SKIPPED and "FAILOVER_TWILIO_SENDER_MPS is not declared" in unset.detail
    assert unset.fix == "set FAILOVER_TWILIO_SENDER_MPS to your senders' total messages per second"
