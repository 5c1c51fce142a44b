"""Every free-text field has a bound, and going over it is a 4xx naming the field and the limit (issue 11, item 2).

The review's 100 KB ``/watch/confirm`` reason stalled the web worker for 10 s
in the e-mail masking; it is now refused before anything reads it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from failover.runtime import Runtime
from failover.sources.signals import sign
from tests.conftest import add_user, csrf_from

SECRET = "bounds-signals-secret"


@pytest.fixture
def env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("FAILOVER_SIGNALS_SECRET", SECRET)
    return env


def test_a_100_kb_reason_to_confirm_an_outage_is_refused(client: FlaskClient, auth: Any) -> None:
    auth.login("operator")
    token = csrf_from(client.get("/").get_data(as_text=True))
    reason = "alice@" + "a" * 100_000  # the shape that made the old masking quadratic
    response = client.post("/watch/confirm", data={"csrf_token": token, "service": "Exchange Online", "reason": reason})
    assert response.status_code == 400
    assert "(internal note, never sent): Field cannot be longer than 500 characters" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v1/notices", {"title": "t" * 301, "body": "b"}, "title: String should have at most 300 characters"),
        ("/api/v1/notices", {"title": "t", "body": "b" * 10_001}, "body: String should have at most 10000 characters"),
        (
            "/api/v1/activations",
            {"runbooks": ["exchange-outage"], "reason": "r" * 501, "dry_run": True},
            "reason: String should have at most 500 characters",
        ),
    ],
)
def test_api_text_is_bounded(
    client: FlaskClient, runtime: Runtime, path: str, body: dict[str, Any], message: str
) -> None:
    from failover.engine import tokens

    add_user(runtime, "ops", "operator")
    with runtime.database.transaction() as session:
        _, bearer = tokens.create(session, name="bounds", role="operator", days=1, actor="test", owner="ops")
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 400 and message in response.get_json()["error"]


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        ({"summary": "s" * 501}, "summary: String should have at most 500 characters"),
        ({"check": "c" * 101}, "check: String should match pattern"),
        ({"ttl": "8d"}, "ttl may be at most 7d"),
    ],
)
def test_signal_text_is_bounded(client: FlaskClient, signal: dict[str, str], message: str) -> None:
    body = json.dumps({"source": "kuma", "service": "Exchange Online", "status": "failing", **signal}).encode()
    response = client.post("/webhooks/signals", data=body, headers={"X-Failover-Signature": sign(body, SECRET)})
    assert response.status_code == 422 and message in response.get_json()["error"]
