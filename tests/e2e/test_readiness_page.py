"""The Readiness page in a real browser: `failover web` runs doctor against the fakes, Chromium shows it.

Twilio is healthy, SendGrid is on a free plan (a warning), the sending domain is
answered by a local DNS server, one operator has not logged in for 120 days, the
last canary round lost its SMS. The screenshot lands in test-output/e2e/ and,
with FAILOVER_UPDATE_SCREENSHOTS=1, in docs/readiness.png for the README.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from failover.clock import utcnow
from failover.db import migrate
from failover.engine import readiness
from failover.models import CanaryRun, User
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import PASSWORD, REPO, add_user, provider_env
from tests.e2e.test_browser import CHROMIUM, DESKTOP, PHONE, launch, no_horizontal_scroll, watch_for_errors
from tests.fakes.dns import FakeDNS, soa
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers
from tests.services import free_port, require, wait_for_port

pytestmark = pytest.mark.e2e

SENDING_DOMAIN = "failover-mail.example.org"


@pytest.fixture
def served(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
) -> Iterator[dict[str, Any]]:
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    port = free_port()
    dns = FakeDNS(
        {
            SENDING_DOMAIN: [
                soa(SENDING_DOMAIN),
                ("MX", "10 mx1.mailhost.example.net."),
                ("TXT", '"v=spf1 include:sendgrid.net ~all"'),
            ]
        }
    ).start()
    public_url = f"http://127.0.0.1:{port}"
    fake_twilio.add_number("+12025550100", sms_url=f"{public_url}/webhooks/twilio/inbound")
    fake_sendgrid.plan = "free"
    fake_sendgrid.credits = {"remain": 100, "total": 100, "overage": 0, "used": 0, "reset_frequency": "daily"}
    fake_sendgrid.authenticate(SENDING_DOMAIN)
    values = {
        **env,
        **provider_env(fake_twilio, fake_sendgrid),
        "SENDGRID_FROM": f"alerts@{SENDING_DOMAIN}",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake_sendgrid.public_key,
        "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'failover.db'}",
        "FAILOVER_HOST": "127.0.0.1",
        "FAILOVER_PORT": str(port),
        "FAILOVER_PUBLIC_URL": public_url,
        "FAILOVER_DNS_NAMESERVERS": dns.address,
        "FAILOVER_TENANT_DOMAINS": "contoso.com",
        "FAILOVER_CANARY_SMS": "+12025550142",
        "FAILOVER_CANARY_EMAIL": "canary.keeper@personal.example",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    the_state_of_things(runtime)
    log = tmp_path / "processes.log"
    web = workers.start("web", values, log)
    try:
        wait_for_port(port, timeout=30)
        yield {"url": public_url, "runtime": runtime, "log": log}
    finally:
        workers.stop(web)
        runtime.close()
        dns.stop()


def the_state_of_things(runtime: Runtime) -> None:
    """Accounts, heartbeats and canary history as a quiet Monday finds them."""
    add_user(runtime, "ada", "admin")
    add_user(runtime, "olga", "operator")
    now = utcnow()
    with runtime.database.transaction() as session:
        session.execute(update(User).where(User.username == "olga").values(last_login_at=now - dt.timedelta(days=120)))
        readiness.beat(session, name="worker@failover-1", kind="worker", now=now, pid=101)
        readiness.beat(session, name="beat@failover-1", kind="beat", now=now, pid=102)
        yesterday = now - dt.timedelta(hours=20)
        for channel, transport, target, outcome, detail, day in (
            ("sms", "twilio", "+1202***0142", "ok", "delivered after 6 s", yesterday - dt.timedelta(days=1)),
            (
                "email",
                "sendgrid",
                "c***@personal.example",
                "ok",
                "delivered after 11 s",
                yesterday - dt.timedelta(days=1),
            ),
            (
                "sms",
                "twilio",
                "+1202***0142",
                "failed",
                "no delivery receipt within 15 min (last heard: sent)",
                yesterday,
            ),
            ("email", "sendgrid", "c***@personal.example", "ok", "delivered after 9 s", yesterday),
        ):
            session.add(
                CanaryRun(
                    channel=channel,
                    transport=transport,
                    target=target,
                    started_at=day,
                    deadline_at=day + dt.timedelta(minutes=15),
                    finished_at=day + dt.timedelta(minutes=15),
                    outcome=outcome,
                    detail=detail,
                    alerted=outcome == "failed",
                )
            )


def test_the_readiness_page_in_a_real_browser(served: dict[str, Any], request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import sync_playwright

    output = Path(os.environ.get("FAILOVER_TEST_OUTPUT", REPO / "test-output")) / "e2e" / request.node.name
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    url = served["url"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            watch_for_errors(page, errors)
            page.goto(f"{url}/login")
            page.fill("#username", "ada")
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_url(f"{url}/")
            page.click("text=Readiness")
            page.wait_for_url(f"{url}/admin/readiness")
            assert "not ready" in page.inner_text("#readiness-summary")  # the lost canary SMS is a failure
            assert page.inner_text("#check-twilio-balance td:first-child") == "ok"
            assert page.inner_text("#check-sendgrid-plan td:first-child") == "warn"
            assert "100 messages a day" in page.inner_text("#check-sendgrid-plan")
            assert page.inner_text("#check-independence-mx td:first-child") == "ok"
            assert "olga (operator)" in page.inner_text("#check-access-recent")
            assert page.inner_text("#check-service-canary td:first-child") == "fail"
            assert page.locator("#canary-history tbody tr").count() == 4
            page.screenshot(path=output / "readiness.png", full_page=True)
            assert no_horizontal_scroll(page)
            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            watch_for_errors(phone, errors)
            phone.goto(f"{url}/admin/readiness")  # the login cookie is per context: the login page
            phone.fill("#username", "ada")
            phone.fill("#password", PASSWORD)
            phone.click("#login")
            phone.goto(f"{url}/admin/readiness")
            phone.screenshot(path=output / "phone-readiness.png", full_page=True)
            assert no_horizontal_scroll(phone), "the Readiness page scrolls sideways on a phone"
        finally:
            browser.close()
    assert not errors, errors
    log = served["log"].read_text()
    assert "+12025550142" not in log and "canary.keeper@" not in log  # no contact data in the web's log
    if os.environ.get("FAILOVER_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(output / "readiness.png", REPO / "docs" / "readiness.png")
