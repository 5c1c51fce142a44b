"""POST /webhooks/signals: signed generic and Alertmanager payloads become votes; bad input gets an audited 4xx."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from failover.models import AuditEvent, DetectionVote, Incident
from failover.runtime import Runtime
from failover.sources.signals import sign

SECRET = "s3cret-signals-key"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def secret(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAILOVER_SIGNALS_SECRET", SECRET)
    return SECRET


def post(
    client: FlaskClient, payload: Any, *, signature: str | None = "sign", query: str = "", raw: bytes | None = None
):  # type: ignore[no-untyped-def]
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["X-Failover-Signature"] = sign(body, SECRET)
    elif signature is not None:
        headers["X-Failover-Signature"] = signature
    return client.post(f"/webhooks/signals{query}", data=body, headers=headers)


def generic(status: str = "failing", service: str = "Exchange Online", **extra: Any) -> dict[str, Any]:
    return {"source": "uptime-kuma", "signals": [{"service": service, "status": status, "check": "owa", **extra}]}


def alertmanager(status: str = "firing", service: str = "Exchange Online") -> dict[str, Any]:
    def alert(name: str, fingerprint: str) -> dict[str, Any]:
        return {
            "status": status,
            "labels": {"alertname": name, "failover_service": service, "severity": "critical"},
            "annotations": {"summary": f"{name} on the mail edge", "description": "SMTP answers 451 4.3.2"},
            "startsAt": "2026-03-02T08:58:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=probe_success",
            "fingerprint": fingerprint,
        }

    return {
        "version": "4",
        "groupKey": '{}:{alertname="ExchangeSMTPDown"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "failover",
        "groupLabels": {"alertname": "ExchangeSMTPDown"},
        "commonLabels": {"failover_service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert("ExchangeSMTPDown", "a1b2c3"), alert("ExchangeOWADown", "d4e5f6")],
    }


def rejections(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.database.reading() as session:
        return [e.details for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "signal.rejected"))]


def votes(runtime: Runtime) -> dict[str, bool]:
    with runtime.database.reading() as session:
        return {f"{v.voter}|{v.service}": v.failing for v in session.scalars(select(DetectionVote))}


BAD = [
    ("unsigned", generic(), None, None, 401, "unsigned request"),
    ("malformed signature", generic(), "md5=abc", None, 401, "malformed X-Failover-Signature"),
    ("wrong signature", generic(), "sha256=" + "0" * 64, None, 401, "does not match the body"),
    ("not json", None, "sign", b"{not json", 400, "body: not JSON"),
    ("not an object", [1, 2], "sign", None, 400, "body must be a JSON object"),
    ("no source", {"signals": [{"service": "Exchange Online", "status": "failing"}]}, "sign", None, 422, "source"),
    ("bad status", generic(status="meh"), "sign", None, 422, "status must be 'failing' or 'healthy'"),
    ("unknown key", generic(colour="red"), "sign", None, 422, "signals.0.colour: unknown key"),
    ("bad ttl", generic(ttl="soon"), "sign", None, 422, "'soon' is not a duration"),
    ("unwatched service", generic(service="Yammer"), "sign", None, 422, "'Yammer' is not watched"),
    (
        "alert without a service label",
        {**alertmanager(), "alerts": [{"status": "firing", "labels": {}}]},
        "sign",
        None,
        422,
        "no failover_service or service label",
    ),  # noqa: E501
    (
        "alert with a bad status",
        {**alertmanager(), "alerts": [{"status": "pending"}]},
        "sign",
        None,
        422,
        "alerts.0.status",
    ),  # noqa: E501
]


@pytest.mark.parametrize(("case", "payload", "signature", "raw", "status", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_requests_get_a_clear_4xx_and_are_audited(
    secret: str,
    client: FlaskClient,
    runtime: Runtime,
    case: str,
    payload: Any,
    signature: str | None,
    raw: bytes | None,
    status: int,
    message: str,
) -> None:
    response = post(client, payload, signature=signature, raw=raw)
    assert response.status_code == status, response.get_data(as_text=True)
    assert message in response.get_json()["error"]
    [audited] = rejections(runtime)
    assert audited["status"] == status and message in audited["reason"]
    assert votes(runtime) == {}


def test_without_a_secret_the_webhook_is_off(client: FlaskClient, runtime: Runtime) -> None:
    response = post(client, generic())
    assert response.status_code == 403 and "FAILOVER_SIGNALS_SECRET" in response.get_json()["error"]
    assert rejections(runtime)[0]["status"] == 403


def test_an_oversized_body_is_refused(secret: str, client: FlaskClient) -> None:
    response = post(client, None, raw=b"x" * (3 * 1024 * 1024))
    assert response.status_code == 413 and response.is_json


def test_generic_signals_become_votes(secret: str, client: FlaskClient, runtime: Runtime) -> None:
    response = post(client, generic(summary="OWA answers 503"))
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["accepted"], body["format"], body["ignored"]) == (1, "generic", [])
    assert votes(runtime) == {"webhook:uptime-kuma/owa|Exchange Online": True}
    single = {"source": "uptime-kuma", "service": "exchange online", "status": "healthy", "check": "owa"}
    assert post(client, single).status_code == 202  # one signal beside its source; any case
    assert votes(runtime) == {"webhook:uptime-kuma/owa|Exchange Online": False}


def test_alertmanager_alerts_are_one_origin_and_two_monitors_confirm_after_hold(
    secret: str, client: FlaskClient, runtime: Runtime
) -> None:
    with freeze_time(START):
        first = post(client, alertmanager(), query="?source=prom-eu")
        assert first.status_code == 202 and first.get_json()["accepted"] == 2
        assert post(client, generic()).status_code == 202
    assert set(votes(runtime)) == {
        "webhook:prom-eu/a1b2c3|Exchange Online",
        "webhook:prom-eu/d4e5f6|Exchange Online",
        "webhook:uptime-kuma/owa|Exchange Online",
    }
    with freeze_time(START + dt.timedelta(minutes=3)):
        runtime.detection.evaluate()
    with runtime.database.reading() as session:
        [incident] = session.scalars(select(Incident))
    assert incident.services == ["Exchange Online"] and incident.source == "watcher"
    with runtime.database.reading() as session:
        received = [
            e.details for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "signal.received"))
        ]
    assert [r["format"] for r in received] == ["alertmanager", "generic"]


def test_the_dashboard_shows_watched_services_and_signals(secret: str, client: FlaskClient, auth: Any) -> None:
    auth.login("viewer")
    post(client, generic(summary="OWA answers 503"))
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="watched-services"' in html and "Exchange Online" in html and "suspected" in html
    assert "OWA answers 503" in html and "not configured" in html  # Graph has no credentials here


def test_an_operator_confirms_from_the_console(client: FlaskClient, runtime: Runtime, auth: Any) -> None:
    from tests.conftest import csrf_from

    auth.login("operator", username="olga")
    token = csrf_from(client.get("/").get_data(as_text=True))
    missing = client.post("/watch/confirm", data={"csrf_token": token, "service": "Exchange Online", "reason": ""})
    assert missing.status_code == 400 and "a reason is required" in missing.get_data(as_text=True)
    unknown = client.post("/watch/confirm", data={"csrf_token": token, "service": "Yammer", "reason": "x"})
    assert unknown.status_code == 404
    form = {"csrf_token": token, "service": "Exchange Online", "reason": "users report NDRs"}
    shown = client.post("/watch/confirm", data=form)  # first what it would send
    assert shown.status_code == 200 and "Confirm outage and send" in shown.get_data(as_text=True)
    from tests.integration.test_web import fingerprint_from

    fingerprint = fingerprint_from(shown.get_data(as_text=True))
    done = client.post("/watch/confirm", data={**form, "confirm": "yes", "fingerprint": fingerprint})
    assert done.status_code == 302 and "/incidents/" in done.headers["Location"]
    with runtime.database.reading() as session:
        [incident] = session.scalars(select(Incident))
    assert incident.source == "manual" and incident.opened_by == "olga"  # the logged-in operator
