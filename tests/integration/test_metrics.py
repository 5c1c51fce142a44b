"""/metrics (issue 16): values checked against the ledger after a broadcast sent by two real worker processes.

The workers count provider requests in prometheus-client's multiprocess
files; the scrape adds every process's files up and reads the ledger gauges
from the database. Both must agree with the ledger and with what the fake
providers received.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from failover.models import Delivery
from failover.runtime import Runtime
from failover.web import create_app
from tests.conftest import make_people, provider_env, write_config
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers

pytestmark = pytest.mark.integration
PEOPLE = 300  # three SMS batches, one mail batch, one status notice: work for both workers
TOKEN = "metrics-token-0123456789"


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
) -> Iterator[tuple[Runtime, dict[str, str]]]:
    config, books = write_config(tmp_path, make_people(PEOPLE))
    values = {
        **env,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_WORKER_CONCURRENCY": "1",
        "FAILOVER_METRICS_TOKEN": TOKEN,
        "FAILOVER_LOG_FORMAT": "json",
        "FAILOVER_LOG_LEVEL": "DEBUG",  # the providers' SDKs log requests (numbers, addresses) at DEBUG
        **provider_env(fake_twilio, fake_sendgrid),
    }
    runtime = workers.stack_runtime("redis+postgresql", values, request, tmp_path, monkeypatch)
    yield runtime, values
    runtime.close()


def _worker(env: dict[str, str], log: Path, hostname: str) -> subprocess.Popen[bytes]:
    """A worker whose stderr (its log) is kept apart from stdout, where Celery prints a word at shutdown."""
    with log.open("ab") as err, log.with_suffix(".out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "failover", "worker", "--hostname", hostname],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            cwd=workers.REPO,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_agree_with_the_ledger_after_a_broadcast_by_two_workers(
    stack: tuple[Runtime, dict[str, str]], tmp_path: Path, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid
) -> None:
    runtime, env = stack
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    processes = [_worker(env, log, f"w{n}@%h") for n, log in enumerate(logs, start=1)]
    try:
        for log in logs:
            workers.wait_until(lambda log=log: "ready." in log.read_text(), timeout=60, what="worker ready", log=log)
        accepted, broker_ok = runtime.activations.activate(
            runbook_id="exchange-outage", reason="metrics", actor="tester"
        )
        assert broker_ok and accepted.counts == {"sms": PEOPLE, "email": PEOPLE, "status": 1}
        workers.wait_until(lambda: workers.open_rows(runtime) == 0, timeout=120, what="all rows final", log=logs[0])
    finally:
        for process in processes:
            workers.stop(process)
    # FAILOVER_LOG_FORMAT=json: every line of both workers is a JSON object, no contact data, ids where it matters.
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.strip()]
    assert len(records) > 100 and all(set(record) >= {"time", "level", "logger", "message"} for record in records)
    text = "\n".join(log.read_text() for log in logs)
    # At DEBUG, with the send loop's own aiohttp requests (no SDK request log of bodies any more) and everything
    # else the workers log: no number, no address, no secret.
    assert not re.search(r"\+1\d{10}|p\d{5}@personal", text) and fake_twilio.auth_token not in text
    sends = [r for r in records if r["batch_id"] is not None and r["activation_id"] == accepted.activation_id]
    assert sends and all(r["request_id"] for r in sends)  # the task id, on every line of a send
    # Both workers counted into the shared directory (<data dir>/metrics), each in its own file.
    writers = {
        path.name.rsplit("_", 1)[-1] for path in (Path(env["FAILOVER_DATA_DIR"]) / "metrics").glob("counter_*.db")
    }
    assert len(writers) == 2, writers

    client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    found = samples(response.get_data(as_text=True))

    with runtime.database.reading() as session:
        ledger = {
            (channel, transport or "", status): count
            for channel, transport, status, count in session.execute(
                select(Delivery.channel, Delivery.transport, Delivery.status, func.count()).group_by(
                    Delivery.channel, Delivery.transport, Delivery.status
                )
            )
        }
    assert ledger == {
        ("sms", "twilio", "sent"): PEOPLE,
        ("email", "sendgrid", "sent"): PEOPLE,
        ("status", "status", "sent"): 1,
    }
    for (channel, transport, status), count in ledger.items():
        assert value(found, "failover_messages", channel=channel, transport=transport, state=status) == count
    # Counted by the two workers, added up at scrape time: one Twilio request per SMS, one SendGrid request in all.
    twilio_posts = len(fake_twilio.requests("POST"))
    assert twilio_posts == PEOPLE
    assert value(found, "failover_provider_requests_total", transport="twilio", outcome="ok") == twilio_posts
    assert value(found, "failover_provider_request_seconds_count", transport="twilio") == twilio_posts
    assert value(found, "failover_provider_requests_total", transport="sendgrid", outcome="ok") == len(
        fake_sendgrid.sends
    )
    assert value(found, "failover_delivery_outcomes_total", channel="sms", transport="twilio", outcome="sent") == PEOPLE
    assert value(found, "failover_delivery_outcomes_total", channel="email", transport="sendgrid", outcome="sent") == (
        PEOPLE
    )
    assert value(found, "failover_queue_depth") == 0 and value(found, "failover_queue_oldest_seconds") == 0
    assert value(found, "failover_circuit_open", transport="twilio") == 0
    assert value(found, "failover_activations", state="completed", drill="false") == 1


def test_without_a_token_there_is_no_metrics_endpoint(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/metrics").status_code == 404


def test_people_snapshot_age_is_scraped(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/prometheus-alerts.yml's "people snapshot stale" alert reads failover_people_snapshot_age_seconds."""
    import datetime as dt

    from freezegun import freeze_time

    from failover.db import migrate
    from failover.models_people import PeopleSource
    from failover.settings import load_settings

    monkeypatch.setenv("FAILOVER_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("FAILOVER_DATABASE_URL", f"sqlite:///{tmp_path / 'failover.db'}")
    runtime = Runtime(load_settings())
    try:
        migrate(runtime.database)
        client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        # Never synced from Entra ID (no graph source): no sample, rather than a made-up age.
        assert ("failover_people_snapshot_age_seconds", ()) not in samples(client.get("/metrics", headers=auth).text)
        synced = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
        with runtime.database.transaction() as session:
            session.add(PeopleSource(source="graph", last_ok_at=synced, last_attempt_at=synced))
        with freeze_time(synced + dt.timedelta(days=2, hours=1)):
            found = samples(client.get("/metrics", headers=auth).text)
        assert value(found, "failover_people_snapshot_age_seconds") == (2 * 86400 + 3600)
    finally:
        runtime.close()
