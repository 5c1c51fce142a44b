"""Unsigned webhook calls cannot fill the audit log; names they carry are validated (issue 11, item 5).

The review's client wrote 1,000 audit rows in 4.7 s with unsigned requests to
/webhooks/signals, and ``?source=`` over 56 characters or with a NUL gave a 500
on PostgreSQL. Refusals are now counted per endpoint and status in a window:
the first is audited, the rest are one summary row when the window ends.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from failover.engine import audit
from failover.models import AuditEvent
from failover.runtime import Runtime
from failover.sources.signals import sign

SECRET = "s3cret-signals-key"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SIGNAL = json.dumps({"source": "kuma", "service": "Exchange Online", "status": "failing"}).encode()


@pytest.fixture
def env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("FAILOVER_SIGNALS_SECRET", SECRET)
    return env


def events(runtime: Runtime, *actions: str) -> list[AuditEvent]:
    with runtime.database.reading() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id)))


def test_a_flood_of_unsigned_calls_is_counted_not_audited_one_by_one(client: FlaskClient, runtime: Runtime) -> None:
    with freeze_time(START) as frozen:
        for _ in range(40):
            response = client.post("/webhooks/signals", data=SIGNAL, headers={"Content-Type": "application/json"})
            assert response.status_code == 401
        for _ in range(10):
            assert client.post("/webhooks/twilio/status?delivery=1", data={"MessageSid": "x"}).status_code == 403
        first = events(runtime, "signal.rejected", "webhook.rejected")
        assert [(e.action, e.details["endpoint"], e.details["status"]) for e in first] == [
            ("signal.rejected", "signals", 401),
            ("webhook.rejected", "twilio/status", 403),
        ]
        assert "unsigned request" in first[0].details["reason"]
        frozen.tick(dt.timedelta(minutes=6))
        runtime.audit.checkpoint()  # beat's housekeeping closes the windows
    summaries = [e.details for e in events(runtime, "signal.rejected", "webhook.rejected")[2:]]
    assert sorted((s["endpoint"], s["count"]) for s in summaries) == [("signals", 39), ("twilio/status", 9)]
    assert summaries[0]["from"] == "2026-03-02T09:00:00Z"
    with runtime.database.reading() as session:
        assert audit.verify(session).ok


def test_a_new_window_audits_its_first_refusal_and_sums_up_the_last(client: FlaskClient, runtime: Runtime) -> None:
    with freeze_time(START) as frozen:
        for _ in range(3):
            client.post("/webhooks/signals", data=SIGNAL, headers={"X-Failover-Signature": "sha256=" + "0" * 64})
        frozen.tick(dt.timedelta(minutes=5))
        client.post("/webhooks/signals", data=SIGNAL, headers={"X-Failover-Signature": "sha256=" + "0" * 64})
    details = [e.details for e in events(runtime, "signal.rejected")]
    assert [d.get("count") for d in details] == [None, 2, None]  # first, the window's summary, the next first


@pytest.mark.parametrize(
    "source",
    ["a" * 60, "kuma%00x", "%ED%A0%80", "bad source", "-leading-dash"],
    ids=["61 characters", "NUL", "lone surrogate bytes", "space", "leading dash"],
)
def test_a_bad_source_is_a_400_before_anything_uses_it(client: FlaskClient, runtime: Runtime, source: str) -> None:
    for signature in (sign(SIGNAL, SECRET), None):
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["X-Failover-Signature"] = signature
        response = client.post(f"/webhooks/signals?source={source}", data=SIGNAL, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "source" in response.get_json()["error"]
    for event in events(runtime, "signal.rejected"):
        assert event.actor in ("webhook:unknown", "webhook")  # never the caller's string


def test_alertmanager_names_are_bounded(client: FlaskClient, runtime: Runtime) -> None:
    alert = {"status": "firing", "labels": {"service": "Exchange Online"}, "fingerprint": "f" * 500}
    body = json.dumps({"version": "4", "receiver": "failover", "alerts": [alert]}).encode()
    response = client.post(
        "/webhooks/signals?source=am", data=body, headers={"X-Failover-Signature": sign(body, SECRET)}
    )
    assert response.status_code == 422 and "alerts.0.fingerprint" in response.get_json()["error"]
    ttl = json.dumps({"source": "kuma", "service": "Exchange Online", "status": "failing", "ttl": "99999999999d"})
    response = client.post("/webhooks/signals", data=ttl, headers={"X-Failover-Signature": sign(ttl.encode(), SECRET)})
    assert response.status_code == 422 and "ttl" in response.get_json()["error"]
