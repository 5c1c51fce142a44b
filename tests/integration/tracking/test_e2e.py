"""End to end with real processes: web (gunicorn), a Celery worker and beat; Twilio is the fake.

Activation -> the worker sends the SMS -> the fake Twilio delivers and calls
back over HTTP, signed, to the web process -> some recipients reply ACK (a
signed inbound webhook) -> beat fires the escalation for the rest after the
configured delay -> the roster the activation page polls counts exactly that.
Runs on the embedded stack (SQLite, SQLite broker) and on Redis + PostgreSQL.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from failover.engine import audit
from failover.models import Activation, Delivery
from failover.runtime import Runtime
from tests.conftest import PASSWORD, add_user, csrf_from, provider_env
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers
from tests.integration.tracking.support import PHONES, tracking_config
from tests.services import free_port, wait_for_port

pytestmark = pytest.mark.integration

ESCALATE_AFTER_S = 8
E2E = textwrap.dedent(f"""\
    id: e2e
    title: Email is down
    trigger: {{activation: manual}}
    steps:
      - {{channel: sms, to: [group:oncall, group:service-desk], text: "Email is down. Reply ACK."}}
    escalation:
      - {{after: {ESCALATE_AFTER_S}s, if: unacknowledged, channel: sms, to: [group:oncall, group:service-desk],
         text: "Reminder: email is down. Reply ACK."}}
    """)
# Sends nothing to anyone: proves the worker is up before the timed part starts.
WARM_UP = "id: warm-up\ntitle: Warm up\nsteps:\n  - {channel: status, title: Test, text: ignore}\n"


@pytest.fixture(params=["embedded", "redis+postgresql"])
def stack(
    request: pytest.FixtureRequest,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
) -> Iterator[tuple[Runtime, dict[str, str], str]]:
    config, books = tracking_config(tmp_path)
    (books / "e2e.yaml").write_text(E2E)
    (books / "warm-up.yaml").write_text(WARM_UP)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    values = {
        **env,
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_PORT": str(port),
        "FAILOVER_PUBLIC_URL": public,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake_sendgrid.public_key,
    }
    runtime = workers.stack_runtime(request.param, values, request, tmp_path, monkeypatch)
    fake_twilio.auto_callbacks = True  # receipts come back by themselves, over HTTP, like Twilio's
    yield runtime, values, public
    runtime.close()


def rows(runtime: Runtime, activation_id: int, step: str) -> dict[str, str]:
    with runtime.database.reading() as session:
        found = session.execute(
            select(Delivery.person_id, Delivery.status).where(
                Delivery.activation_id == activation_id, Delivery.step == step
            )
        ).all()
    return dict(found)


def completed(runtime: Runtime, activation_id: int) -> bool:
    with runtime.database.reading() as session:
        return session.get_one(Activation, activation_id).state == "completed"


def test_receipts_replies_and_escalation_end_to_end(
    stack: tuple[Runtime, dict[str, str], str], tmp_path: Path, fake_twilio: FakeTwilio
) -> None:
    runtime, env, public = stack
    log = tmp_path / "processes.log"
    processes = [workers.start(name, env, log) for name in ("web", "worker", "beat")]
    try:
        wait_for_port(int(env["FAILOVER_PORT"]), timeout=30)
        warm, _ = runtime.activations.activate(runbook_id="warm-up", reason="warm up", actor="tester")
        workers.wait_until(lambda: completed(runtime, warm.activation_id), timeout=60, what="worker up", log=log)

        accepted, broker_ok = runtime.activations.activate(runbook_id="e2e", reason="end to end", actor="tester")
        assert broker_ok and accepted.counts == {"sms": 5}
        everyone = {"alice", "bob", "heidi", "dan", "erin"}
        workers.wait_until(
            lambda: rows(runtime, accepted.activation_id, "steps.0") == dict.fromkeys(everyone, "delivered"),
            timeout=30,
            what="every SMS delivered, as reported by signed receipts",
            log=log,
        )
        inbound = f"{public}/webhooks/twilio/inbound"
        for person, body in (("alice", "ACK"), ("bob", "ok"), ("dan", "1")):
            status, twiml = fake_twilio.send_inbound(inbound, PHONES[person], body)
            assert status == 200 and "Acknowledged, thank you: Email is down" in twiml
        assert rows(runtime, accepted.activation_id, "escalation.0") == {}  # not due yet

        silent = {"heidi": "delivered", "erin": "delivered"}
        workers.wait_until(
            lambda: rows(runtime, accepted.activation_id, "escalation.0") == silent,
            timeout=ESCALATE_AFTER_S + 40,
            what="the escalation of the two silent recipients, delivered",
            log=log,
        )
        reminders = [m["to"] for m in fake_twilio.messages if m["body"] == "Reminder: email is down. Reply ACK."]
        assert sorted(reminders) == sorted([PHONES["heidi"], PHONES["erin"]])

        roster: dict[str, Any] = (
            signed_in(runtime, public)
            .get(f"{public}/activations/{accepted.activation_id}/roster.json", timeout=10)
            .json()
        )
        counts = {c["group"]: (c["acknowledged"], c["need_help"], c["no_answer"]) for c in roster["counts"]}
        assert counts == {
            "(everyone)": (3, 0, 2),
            "oncall": (2, 0, 1),
            "service-desk": (1, 0, 1),
            "it-leads": (1, 0, 0),
            "all-staff": (3, 0, 2),
        }
        people = {p["person"]: (p["reached"], p["answer"], p["escalations"]) for p in roster["people"]}
        assert people == {
            "alice": (True, "ack", 0),
            "bob": (True, "ack", 0),
            "dan": (True, "ack", 0),
            "heidi": (True, None, 1),
            "erin": (True, None, 1),
        }
        assert [(e["outcome"], e["paged"]) for e in roster["escalations"]] == [("paged", 2)]
    finally:
        for process in processes:
            workers.stop(process)
    with runtime.database.reading() as session:
        assert audit.verify(session).ok
    assert {status for _, _, status in fake_twilio.callbacks} == {200, 204}
    text = log.read_text()
    assert "+1202555" not in text and "@personal.example" not in text  # no contact data in any log


def signed_in(runtime: Runtime, public: str) -> requests.Session:
    """A browser-like session logged in to the real server through its login form."""
    add_user(runtime, "watcher-viewer", "viewer")
    session = requests.Session()
    token = csrf_from(session.get(f"{public}/login", timeout=10).text)
    answer = session.post(
        f"{public}/login",
        timeout=10,
        allow_redirects=False,
        data={"csrf_token": token, "username": "watcher-viewer", "password": PASSWORD},
    )
    assert answer.status_code == 302, answer.text
    return session
