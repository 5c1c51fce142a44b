"""A real Celery worker process, on the real Redis broker (with PostgreSQL) and on the embedded broker.

200 recipients; every ledger row ends ``sent`` exactly once; the fake
providers saw exactly one request per SMS and one per email batch; the
audit chain verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from failover.engine import audit
from failover.models import Delivery
from failover.runtime import Runtime
from tests.conftest import make_people, provider_env, write_config
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers

pytestmark = pytest.mark.integration
PEOPLE = 200


@pytest.fixture(params=["redis+postgresql", "embedded"])
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
        **provider_env(fake_twilio, fake_sendgrid),
    }
    runtime = workers.stack_runtime(request.param, values, request, tmp_path, monkeypatch)
    yield runtime, values
    runtime.close()


def test_a_real_worker_sends_every_message_exactly_once(
    stack: tuple[Runtime, dict[str, str]], tmp_path: Path, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid
) -> None:
    runtime, env = stack
    log = tmp_path / "worker.log"
    worker = workers.start("worker", env, log)
    try:
        accepted, broker_ok = runtime.activations.activate(
            runbook_id="exchange-outage", reason="integration", actor="tester"
        )
        assert broker_ok
        assert accepted.counts == {"sms": PEOPLE, "email": PEOPLE, "status": 1}
        workers.wait_until(lambda: workers.open_rows(runtime) == 0, timeout=120, what="all rows final", log=log)
    finally:
        workers.stop(worker)
    with runtime.database.reading() as session:
        statuses = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert audit.verify(session).ok
    assert statuses == {"sent": 2 * PEOPLE + 1}
    sms = fake_twilio.sent_to()
    assert len(sms) == PEOPLE and set(sms.values()) == {1}
    assert len(fake_twilio.requests("POST")) == PEOPLE  # one request per SMS, no retries
    assert len(fake_sendgrid.sends) == 1  # 200 recipients share one subject and body: one request
    assert set(fake_sendgrid.delivery_ids().values()) == {1} and len(fake_sendgrid.recipients()) == PEOPLE
    text = log.read_text()
    assert "+1202555" not in text and "@personal.example" not in text  # no contact data in logs
