"""A real browser against real processes: log in, trigger, preview, confirm, watch all-sent, stand down.

Chromium (Debian's package, never a downloaded one) driven by Playwright talks
to `failover web` (gunicorn) while a `failover worker` sends through the real
Twilio and SendGrid SDKs to the local fakes, on the embedded SQLite database
and broker. Screenshots of the main pages land in test-output/e2e/ (or
$FAILOVER_TEST_OUTPUT); with FAILOVER_UPDATE_SCREENSHOTS=1 the preview and
activation screenshots are also copied to docs/ for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.db import migrate
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import PASSWORD, REPO, add_user, provider_env
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


@pytest.fixture
def output(request: pytest.FixtureRequest) -> Path:
    base = Path(os.environ.get("FAILOVER_TEST_OUTPUT", REPO / "test-output")) / "e2e" / request.node.name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    return base


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
    values = {
        **env,
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'failover.db'}",
        "FAILOVER_HOST": "127.0.0.1",
        "FAILOVER_PORT": str(port),
        "FAILOVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FAILOVER_SMS_SEGMENT_PRICE": "0.0079",
        "FAILOVER_EMAIL_PRICE": "0.00095",
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
            page.check("input[name=runbook][value=exchange-outage]")
            page.fill("#reason", "Outlook answers 451 4.3.2 since 08:40")
            page.click("#preview")
            page.wait_for_selector("#confirm")
            counts = page.locator("#preview-counts").inner_text()
            assert "sms: 3" in counts and "email: 7" in counts and "status: 1" in counts
            assert "USD 0.0304" in page.locator("#cost").inner_text()  # 3 segments x 0.0079 + 7 x 0.00095
            assert "erin" in page.locator("#skipped").inner_text()
            assert "1 segment, GSM-7" in page.content()
            page.screenshot(path=output / "03-preview.png", full_page=True)

            page.click("#confirm")
            page.wait_for_url(f"{url}/activations/1")
            page.wait_for_selector("#counts[data-done=true]", timeout=90_000)
            sent = int(page.locator('[data-count="sent"]').inner_text())
            assert sent == 11 and page.locator('[data-count="pending"]').inner_text() == "0", log.read_text()[-3000:]
            assert page.locator('[data-count="failed"]').inner_text() == "0"
            page.wait_for_selector("#state.completed", timeout=30_000)
            page.reload()  # the per-recipient table is server-rendered
            table = page.locator("#recipients").inner_text()
            assert "+1********01" in table and "+12025550101" not in table  # masked
            page.screenshot(path=output / "04-activation.png", full_page=True)

            page.goto(f"{url}/status")
            assert "Major disruption" in page.inner_text("#overall")
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
            assert "All systems operational" in page.inner_text("#overall")

            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            watch_for_errors(phone, errors)
            log_in(phone, url)
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
    assert len(fake_sendgrid.recipients()) == 7
    if os.environ.get("FAILOVER_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(output / "03-preview.png", REPO / "docs" / "preview.png")
        shutil.copyfile(output / "04-activation.png", REPO / "docs" / "activation.png")


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
