"""A real browser against real processes: log in, trigger, preview, confirm, watch receipts arrive, stand down.

Chromium (Debian's package, never a downloaded one) driven by Playwright talks
to `failover web` (gunicorn) while a `failover worker` sends through the real
Twilio and SendGrid SDKs to the local fakes, on the embedded SQLite database
and broker. The contacts are the demo's eight plus 2,992 more in a "company"
group, so the same session also shows the activation page of a 3,000-person
activation (planned by the engine in the test process, its outcome written in
bulk). Screenshots of the main pages land in test-output/e2e/ (or
$FAILOVER_TEST_OUTPUT); with FAILOVER_UPDATE_SCREENSHOTS=1 the phone-size
preview and activation screenshots are also copied to docs/ for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert, update

from failover.clock import utcnow
from failover.db import migrate
from failover.models import Answer, Delivery
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import PASSWORD, REPO, add_user, make_people, provider_env
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers
from tests.services import free_port, require, wait_for_port

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1100, "height": 900}
PHONE = {"width": 375, "height": 740}  # an iPhone SE-sized screen
COMPANY = 2992  # with the demo's eight: 3,000 people
COMPANY_WIDE = """\
id: company-wide
title: Microsoft 365 is down - everyone by SMS and personal mail
description: Sign-in, mail and Teams are down. Everyone gets an SMS and a mail at their personal address.
trigger: {services: ["Microsoft 365 suite"], activation: manual}
steps:
  - {channel: sms, to: [group:company, group:oncall], check_in: true,
     text: "Microsoft 365 is down. Do not wait for email. Reply 1 if you can work, 2 if you need help."}
  - {channel: email, to: [group:company], subject: "Microsoft 365 is down", text: "Use SMS until further notice."}
escalation:
  - {after: 15m, if: unacknowledged, channel: sms, to: [group:it-leads], text: "Staff are silent: check the console."}
"""


def company_config(directory: Path) -> tuple[Path, Path]:
    """The demo config and runbooks, plus 2,992 people in a "company" group and a runbook for all of them."""
    config, books = directory / "config", directory / "runbooks"
    shutil.copytree(REPO / "config", config)
    shutil.copytree(REPO / "runbooks", books)
    contacts = yaml.safe_load((config / "contacts.yaml").read_text())
    people = make_people(COMPANY, groups=("company",))
    for person in people[-12:]:  # no number, no address: unreachable
        del person["phone"], person["email"]
    contacts["groups"]["company"] = {"description": "Everyone else"}
    contacts["people"] += people
    (config / "contacts.yaml").write_text(yaml.safe_dump(contacts, sort_keys=False))
    (books / "company-wide.yaml").write_text(COMPANY_WIDE)
    return config, books


def the_day_at_3000(runtime: Runtime) -> int:
    """Activate company-wide and write where its 3,000 people stand 20 minutes in, in a few bulk UPDATEs."""
    accepted, _ = runtime.activations.activate(runbook_id="company-wide", reason="M365 down since 08:40", actor="olga")
    now = utcnow()
    ids = [f"p{n:05d}" for n in range(COMPANY)]
    with runtime.database.transaction() as session:
        mine = Delivery.activation_id == accepted.activation_id
        for channel, transport in (("sms", "twilio"), ("email", "sendgrid")):
            session.execute(
                update(Delivery)
                .where(mine, Delivery.channel == channel, Delivery.status == "pending")
                .values(status="sent", transport=transport, sent_at=now, updated_at=now, batch_id=None)
            )
        session.execute(
            update(Delivery)
            .where(mine, Delivery.channel == "sms", Delivery.status == "sent", Delivery.person_id.in_(ids[:2800]))
            .values(status="delivered", receipt="delivered", delivered_at=now)
        )
        session.execute(
            update(Delivery)
            .where(mine, Delivery.channel == "sms", Delivery.person_id.in_(ids[2900:2907]))
            .values(status="failed", error_code="30003", last_error="Unreachable destination handset")
        )
        answers = [{"person_id": p, "answer": "ack"} for p in ids[:2100]]
        answers += [{"person_id": p, "answer": "need_help"} for p in ids[2100:2112]]
        session.execute(
            insert(Answer),
            [
                {**a, "activation_id": accepted.activation_id, "via": "sms", "first_at": now, "answered_at": now}
                for a in answers
            ],
        )
    return accepted.activation_id


@pytest.fixture
def output(request: pytest.FixtureRequest) -> Path:
    base = Path(os.environ.get("FAILOVER_TEST_OUTPUT", REPO / "test-output")) / "e2e" / request.node.name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    return base


@pytest.fixture
def config_dirs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """The demo config, or (parametrized "company") the demo plus 2,992 people."""
    if getattr(request, "param", "demo") == "company":
        return company_config(tmp_path)
    return REPO / "config", REPO / "runbooks"


@pytest.fixture
def served(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
    config_dirs: tuple[Path, Path],
) -> Iterator[dict[str, Any]]:
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    port = free_port()
    config, books = config_dirs
    values = {
        **env,
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'failover.db'}",
        "FAILOVER_HOST": "127.0.0.1",
        "FAILOVER_PORT": str(port),
        "FAILOVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FAILOVER_SMS_SEGMENT_PRICE": "0.0079",
        "FAILOVER_EMAIL_PRICE": "0.00095",
        "FAILOVER_TWILIO_SENDER_MPS": "1",  # one long code: the preview says when the last SMS leaves Twilio
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    add_user(runtime, "olga", "operator")
    log = tmp_path / "processes.log"
    web = workers.start("web", values, log)
    worker = workers.start("worker", values, log)
    try:
        wait_for_port(port, timeout=30)
        yield {"url": f"http://127.0.0.1:{port}", "runtime": runtime, "log": log}
    finally:
        workers.stop(web)
        workers.stop(worker)
        runtime.close()


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def watch_for_errors(page: Any, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)


def no_horizontal_scroll(page: Any) -> bool:
    # After a click the page may still be without its stylesheet; measured unstyled, its tables overflow.
    page.wait_for_load_state("load")
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    assert page.url.startswith(f"{url}/login")  # the console is behind the login
    page.fill("#username", "olga")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("config_dirs", ["company"], indirect=True)
def test_trigger_watch_and_stand_down_in_a_real_browser(
    served: dict[str, Any], output: Path, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid
) -> None:
    from playwright.sync_api import sync_playwright

    url, log = served["url"], served["log"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            watch_for_errors(page, errors)
            page.goto(f"{url}/login")
            page.screenshot(path=output / "01-login.png", full_page=True)
            log_in(page, url)
            assert page.locator("#channels").inner_text().count("outbox") == 0  # Twilio and SendGrid configured
            page.screenshot(path=output / "02-dashboard.png", full_page=True)

            page.click("#activate-button")
            assert "Step 1 · SMS to oncall: 3 people" in page.inner_text("#runbook-exchange-outage")
            page.check("input[name=runbook][value=exchange-outage]")
            page.fill("#reason", "Outlook answers 451 4.3.2 since 08:40")
            page.click("#preview")
            page.wait_for_selector("#confirm")
            counts = page.locator("#preview-counts").inner_text()
            assert "sms: 3" in counts and "email: 7" in counts and "status: 1" in counts
            assert "USD 0.0304" in page.locator("#cost").inner_text()  # 3 segments x 0.0079 + 7 x 0.00095
            handout = page.locator("#handout").inner_text()
            assert handout.startswith("Reaching phones: 3 SMS at 1 MPS: about 3 s after we finish sending")
            assert page.inner_text("#skipped-count").startswith("1 skipped")  # collapsed to a count
            assert not page.is_visible("#skipped")
            page.click("#skipped-count")  # one tap shows who
            assert "erin" in page.locator("#skipped").inner_text()
            assert "1 segment, GSM-7" in page.content() and "via Twilio" in page.content()
            assert page.locator("#outbox-warning").count() == 0
            page.screenshot(path=output / "03-preview.png", full_page=True)

            page.click("#confirm")
            page.wait_for_url(f"{url}/activations/1")
            page.wait_for_selector("#counts[data-done=true]", timeout=90_000)
            sent = int(page.locator('[data-count="sent"]').inner_text())
            assert sent == 11 and page.locator('[data-count="pending"]').inner_text() == "0", log.read_text()[-3000:]
            assert page.locator('[data-count="failed"]').inner_text() == "0"
            page.wait_for_selector("#state.completed", timeout=30_000)
            # Every row is sent; the receipts come now, to the page as it is open (no reload).
            fake_twilio.outcomes["+12025550102"] = ("undelivered", 30003)  # bob's SMS never arrives
            assert fake_twilio.deliver() == [204] * 6  # sent, then delivered or undelivered, for each SMS
            page.wait_for_selector('[data-count="failed"]:text-is("1")', timeout=30_000)
            assert page.locator('[data-count="delivered"]').inner_text() == "2"
            assert "Bob Example" in page.inner_text("#failures") and "30003" in page.inner_text("#failures")
            assert page.inner_text('[data-people="reached"]') == "2"  # alice and heidi: a receipt each
            people = page.locator("#people").inner_text()
            assert "+1********01" in people and "+12025550101" not in people  # masked
            page.screenshot(path=output / "04-activation.png", full_page=True)

            page.goto(f"{url}/status")
            assert "Partial System Outage" in page.inner_text("#overall")
            page.screenshot(path=output / "05-status.png", full_page=True)

            page.goto(f"{url}/incidents/1")
            page.click("#stand-down")
            page.wait_for_selector("#confirm-stand-down")
            assert "Email is working again" in page.content()
            page.screenshot(path=output / "06-stand-down.png", full_page=True)
            page.fill("#note", "Exchange Online is back")
            page.click("#confirm-stand-down")
            page.wait_for_url(f"{url}/incidents/1")
            assert page.inner_text("#incident-state") == "resolved"
            page.screenshot(path=output / "07-incident.png", full_page=True)

            page.goto(f"{url}/activations/2")
            page.wait_for_selector("#counts[data-done=true]", timeout=90_000)
            assert page.locator('[data-count="sent"]').inner_text() == "11"
            page.goto(f"{url}/audit")
            assert "Chain verified" in page.inner_text("#chain")
            page.screenshot(path=output / "08-audit.png", full_page=True)
            page.goto(f"{url}/status")
            assert "All Systems Operational" in page.inner_text("#overall")

            big = the_day_at_3000(served["runtime"])
            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            watch_for_errors(phone, errors)
            log_in(phone, url)
            confirm_outage = phone.locator("#watched-services button", has_text="Confirm outage").first
            box = confirm_outage.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # reachable
            phone.goto(f"{url}/activate")
            phone.check("input[name=runbook][value=exchange-outage]")
            phone.fill("#reason", "Outlook answers 451 4.3.2 since 08:40")
            phone.click("#preview")
            phone.wait_for_selector("#confirm")
            phone.screenshot(path=output / "phone-preview.png", full_page=True)
            assert no_horizontal_scroll(phone), "the preview scrolls sideways on a phone"
            phone.goto(f"{url}/activations/{big}")
            assert phone.inner_text('[data-people="asked"]') == "2983"
            assert phone.inner_text("[data-failures-total]") == "7"
            phone.screenshot(path=output / "phone-activation-3000.png", full_page=True, clip=phone_clip(phone, 1900))
            assert no_horizontal_scroll(phone), "the 3,000-person activation scrolls sideways on a phone"
            phone.click('#filters a[data-filter="not_reached"]')
            phone.wait_for_url("**show=not_reached**")
            assert "183 people not reached" in phone.inner_text("#matching")
            clip = phone_clip(phone, 1300, start="#people-heading")
            phone.screenshot(path=output / "phone-not-reached.png", full_page=True, clip=clip)
            for path, name in [
                ("/", "dashboard"),
                ("/activations/1", "activation"),
                ("/incidents/1", "incident"),
                ("/audit", "audit"),
                ("/notices", "notices"),
                ("/status", "status"),
            ]:
                phone.goto(f"{url}{path}")
                phone.screenshot(path=output / f"phone-{name}.png", full_page=True)
                assert no_horizontal_scroll(phone), f"{path} scrolls sideways on a phone"
        finally:
            browser.close()
    assert not errors, errors
    assert sorted(fake_twilio.sent_to().values()) == [2, 2, 2]  # oncall: the alert, then the all-clear, once each
    assert len(fake_twilio.calls) == 1  # bob's undelivered SMS became a call at once (the step's fallback)
    assert len(fake_sendgrid.recipients()) == 7
    if os.environ.get("FAILOVER_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        for shot, doc in (
            ("phone-preview.png", "preview.png"),
            ("phone-activation-3000.png", "activation.png"),
            ("phone-not-reached.png", "not-reached.png"),
        ):
            shutil.copyfile(output / shot, REPO / "docs" / doc)


def phone_clip(page: Any, height: int, start: str | None = None) -> dict[str, int]:
    """Part of a long page (from its top, or from ``start``): what a phone shows in two or three swipes."""
    full = int(page.evaluate("document.documentElement.scrollHeight"))
    top = int(page.locator(start).bounding_box()["y"] + page.evaluate("window.scrollY")) - 8 if start else 0
    return {"x": 0, "y": top, "width": PHONE["width"], "height": min(height, full - top)}


def test_the_console_works_without_javascript(served: dict[str, Any], output: Path) -> None:
    from playwright.sync_api import sync_playwright

    url = served["url"]
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(viewport=PHONE, java_script_enabled=False).new_page()
            log_in(page, url)
            page.goto(f"{url}/activate")
            page.check("input[name=runbook][value=teams-outage]")
            page.fill("#reason", "Teams calls fail")
            page.click("#preview")
            page.wait_for_selector("#confirm")
            assert no_horizontal_scroll(page)
            page.screenshot(path=output / "phone-preview-no-js.png", full_page=True)
            page.click("#confirm")
            page.wait_for_url(f"{url}/activations/1")
            assert page.inner_text("#state") in ("queued", "completed")
            page.click("#logout")
            page.wait_for_url(f"{url}/login")
        finally:
            browser.close()


def test_the_public_status_page_on_a_phone(served: dict[str, Any], output: Path, tmp_path: Path) -> None:
    """The page people reload on the day: readable at phone size with and without JavaScript, and its
    published copy says when it may be stale."""
    import datetime as dt

    from playwright.sync_api import sync_playwright

    url, status = served["url"], served["runtime"].status
    status.open_incident(
        item=status.draft(
            title="Email is delayed",
            body="Mail to **external** addresses is delayed by up to an hour. <script>alert('x')</script>",
            impact="major",
            components={"Exchange Online": "partial_outage"},
        ),
        actor="olga",
    )
    now = utcnow()
    status.open_incident(
        item=status.draft(
            kind="maintenance",
            title="Teams phone system upgrade",
            body="Calls may drop for a minute.",
            components={"Microsoft Teams": "under_maintenance"},
            scheduled_for=now + dt.timedelta(days=1),
            scheduled_until=now + dt.timedelta(days=1, hours=2),
        ),
        actor="olga",
    )
    site = tmp_path / "site"
    status.export(site)
    index = site / "index.html"
    old = (now - dt.timedelta(hours=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    index.write_text(index.read_text().replace('data-generated="', f'data-generated="{old}" data-was="', 1))
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            watch_for_errors(phone, errors)
            phone.goto(f"{url}/status")
            assert "Partial System Outage" in phone.inner_text("#overall")
            assert "Email is delayed" in phone.inner_text("#incidents")
            assert "Teams phone system upgrade" in phone.inner_text("#maintenance")
            assert phone.locator(".component").count() == 3
            assert phone.locator(".local-time").count() >= 3  # the script added the reader's own time
            assert not phone.is_visible("#stale")  # just generated
            visible_days = phone.evaluate(
                "[...document.querySelectorAll('#component-exchange-online .bars span')]"
                ".filter(e => e.offsetWidth > 0).length"
            )
            assert visible_days == 30  # a phone shows the last 30 days of the 90
            assert no_horizontal_scroll(phone), "the status page scrolls sideways on a phone"
            phone.screenshot(path=output / "phone-status.png", full_page=True)

            phone.click("#subscribe-link")
            phone.fill("#address", "reader@personal.example")
            phone.click("#subscribe")
            assert "confirmation is on its way" in phone.inner_text("#subscribe-done")
            assert no_horizontal_scroll(phone)

            phone.goto(index.as_uri())  # the copy published elsewhere, two hours old
            assert "Email is delayed" in phone.inner_text("#incidents")
            assert phone.is_visible("#stale") and "may be stale" in phone.inner_text("#stale")
            assert no_horizontal_scroll(phone)
            phone.screenshot(path=output / "phone-status-stale.png", full_page=True)

            plain = browser.new_context(viewport=PHONE, java_script_enabled=False).new_page()
            plain.goto(f"{url}/status")
            assert "Email is delayed" in plain.inner_text("#incidents") and plain.locator(".component").count() == 3
            assert "alert('x')" in plain.inner_text("#incidents")  # shown as text, never run
            assert no_horizontal_scroll(plain)
        finally:
            browser.close()
    assert not errors, errors
