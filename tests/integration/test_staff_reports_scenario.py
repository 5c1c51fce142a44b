"""The 9:05 a.m. scenario with real `failover worker` and `failover beat` processes.

The SMTP probe (beat runs it every second against a fake Exchange edge)
sees "451 4.3.2"; staff text ``DOWN MAIL`` (signed inbound webhooks from the
Twilio fake). One failing probe is one source: nothing happens. Four staff
reports are not yet a source; an unknown number counts for nothing. The
fifth distinct reporter makes the reports source fail; once it has held for
``hold``, beat's evaluation confirms (quorum 2: probe + reports) and the
worker sends the exchange-outage runbook's SMS. The time from the fifth
report to the first runbook SMS is measured and printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from failover.engine import audit
from failover.models import AuditEvent, DetectionVote, Incident, StaffReport
from failover.runtime import Runtime
from failover.web import create_app
from tests.conftest import make_people, provider_env, write_config
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import FakeSMTP
from tests.fakes.twilio import FakeTwilio, flask_poster
from tests.integration import workers

pytestmark = pytest.mark.integration
PEOPLE = 6  # all in group:oncall; five of them report
HOLD_S = 2.0
PUBLIC = "https://failover.example.org"
INBOUND = PUBLIC + "/webhooks/twilio/inbound"
EXO = "Exchange Online"


@pytest.fixture
def edge() -> Iterator[FakeSMTP]:
    with FakeSMTP(failing=True) as fake:
        yield fake


@pytest.fixture(params=["embedded", "redis+postgresql"])
def stack(
    request: pytest.FixtureRequest,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
    edge: FakeSMTP,
) -> Iterator[tuple[Runtime, dict[str, str], list[dict[str, object]]]]:
    people = make_people(PEOPLE)
    config, books = write_config(tmp_path, people)
    detection = {
        "watch": [EXO, "Microsoft Teams"],
        "probes": [
            {
                "name": "exchange-mx",
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": edge.port,
                "interval": "1s",
                "timeout": "5s",
                "mail_from": "probe@failover.example",
                "rcpt_to": "postmaster@contoso.example",
                "services": [EXO],
            }
        ],
        "confirm": {"probe_quorum": 2, "hold": f"{HOLD_S:g}s", "evaluate_interval": "1s"},
        "reports": {"aliases": {EXO: ["MAIL", "OUTLOOK"]}, "min_reporters": 5, "window": "10m"},
    }
    (config / "detection.yaml").write_text(yaml.safe_dump(detection))
    values = {
        **env,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_PUBLIC_URL": PUBLIC,
        **provider_env(fake_twilio, fake_sendgrid),
    }
    runtime = workers.stack_runtime(request.param, values, request, tmp_path, monkeypatch)
    # Twilio's inbound webhooks reach the web app in this process, signed for the public URL.
    fake_twilio.poster = flask_poster(create_app(runtime=runtime, test_config={"TESTING": True}).test_client())
    yield runtime, values, people
    runtime.close()


def vote(runtime: Runtime, voter: str) -> DetectionVote | None:
    with runtime.database.reading() as session:
        return session.get(DetectionVote, (voter, EXO))


def test_five_staff_reports_and_a_failing_smtp_probe_activate_the_runbook(
    stack: tuple[Runtime, dict[str, str], list[dict[str, object]]],
    tmp_path: Path,
    fake_twilio: FakeTwilio,
    edge: FakeSMTP,
) -> None:
    runtime, env, people = stack
    phones = [str(p["phone"]) for p in people]
    log = tmp_path / "processes.log"
    worker = workers.start("worker", env, log)
    beat = workers.start("beat", env, log)
    try:

        def probe_failing() -> bool:
            found = vote(runtime, "probe:exchange-mx")
            return found is not None and found.failing

        workers.wait_until(probe_failing, timeout=60, what="the SMTP probe seeing 451 4.3.2", log=log)
        assert "451 4.3.2" in (vote(runtime, "probe:exchange-mx") or DetectionVote()).summary

        answers = []
        for phone, body in zip(
            phones[:4], ["DOWN MAIL", "down mail", "Down - mail since 9", "DOWN OUTLOOK!"], strict=True
        ):
            status, twiml = fake_twilio.send_inbound(INBOUND, phone, body)
            assert status == 200
            answers.append(twiml)
        assert all("Thanks - we are on it" in a for a in answers)
        status, twiml = fake_twilio.send_inbound(INBOUND, phones[0], "DOWN MAIL")  # a second report: no answer
        assert status == 200 and "<Message>" not in twiml
        status, twiml = fake_twilio.send_inbound(INBOUND, "+14155550123", "DOWN MAIL")  # nobody we know
        assert status == 200 and "cannot read replies" in twiml
        reports = vote(runtime, "reports")
        assert reports is not None and not reports.failing and reports.summary.startswith("4 staff report(s)")
        time.sleep(HOLD_S + 1.0)  # probe held for long enough: one source alone still confirms nothing
        with runtime.database.reading() as session:
            assert session.scalars(select(Incident)).first() is None
        assert fake_twilio.messages == []

        fifth = time.time()
        status, twiml = fake_twilio.send_inbound(INBOUND, phones[4], "down mail")
        assert status == 200 and "Thanks - we are on it" in twiml
        workers.wait_until(lambda: len(fake_twilio.messages) >= PEOPLE, timeout=60, what="the runbook SMS", log=log)
        first = min(m["_created"] for m in fake_twilio.messages)
        print(f"\nfifth report -> first runbook SMS: {first - fifth:.2f}s (hold {HOLD_S:g}s, evaluate 1s)")
        assert HOLD_S <= first - fifth <= HOLD_S + 10.0, f"first SMS {first - fifth:.2f}s after the fifth report"
    finally:
        workers.stop(beat)
        workers.stop(worker)

    outage = [m for m in fake_twilio.messages if "Outlook/Exchange email is failing" in m["body"]]
    assert sorted(m["to"] for m in outage) == sorted(phones)  # once each
    with runtime.database.reading() as session:
        [incident] = session.scalars(select(Incident))
        assert (incident.source, incident.opened_by, incident.services) == ("watcher", "watcher", [EXO])
        confirmed = session.scalars(select(AuditEvent).where(AuditEvent.action == "watch.confirmed")).one()
        assert "reports" in confirmed.details["why"] and "probe:exchange-mx" in confirmed.details["why"]
        assert session.scalar(select(StaffReport.id).where(StaffReport.reporter == "unknown")) is None
        assert len(session.scalars(select(StaffReport)).all()) == 6  # five people, one of them twice
        unknown = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.unknown_sender")).one()
        assert unknown.details["sender"] != "+14155550123"  # masked
        assert audit.verify(session).ok
    text = log.read_text()
    assert "Traceback" not in text
    assert "+1202555" not in text and "@personal.example" not in text
