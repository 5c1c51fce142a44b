"""The JSON API: bearer tokens, dry runs, activations, approvals, notices, audit; errors are always JSON."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from failover.engine import tokens
from failover.runtime import Runtime
from tests.conftest import add_user
from tests.integration.test_web import sent_all


class Api:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, json: Any = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.open(f"/api/v1{path}", method=method, json=json, headers=self.headers, **kwargs)


def make_api(app: Flask, runtime: Runtime, name: str, role: str) -> Api:
    """A token acting for a user of its own, named after it."""
    add_user(runtime, name, role)
    with runtime.database.transaction() as session:
        _, secret = tokens.create(session, name=name, role=role, days=7, actor="test", owner=name)
    return Api(app.test_client(), secret)


@pytest.fixture
def api(app: Flask, runtime: Runtime) -> Api:
    return make_api(app, runtime, "automation", "operator")


def test_a_dry_run_previews_without_writing(api: Api) -> None:
    response = api("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "451 4.3.2", "dry_run": True})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["dry_run"] is True and data["counts"] == {"sms": 3, "email": 7, "status": 1}
    sms = data["runbooks"][0]["steps"][0]
    assert sms["channel"] == "sms" and sms["texts"][0]["sms"]["encoding"] == "GSM-7"
    assert data["skipped"] == [
        {
            "runbook_id": "exchange-outage",
            "step": "steps.1",
            "label": "Step 2 · email to all-staff",
            "person_id": "erin",
            "channel": "email",
            "reason": "no email address",
        }
    ]
    assert data["cost"]["total"] is None and data["cost"]["sms_segments"] == 3
    assert api("GET", "/incidents").get_json() == {"incidents": []}


def test_the_api_separates_the_internal_note_from_the_message_to_recipients(api: Api) -> None:
    """``reason`` is the internal note (audit only, as documented); ``message`` is what recipients read."""
    body = {"runbooks": ["exchange-outage"], "reason": "ticket INC-4711", "message": "Use SMS for now."}
    preview = api("POST", "/activations", {**body, "dry_run": True}).get_json()
    texts = [t["body"] for step in preview["runbooks"][0]["steps"] for t in step["texts"]]
    assert any("Note from IT: Use SMS for now." in text for text in texts)
    assert not any("INC-4711" in text for text in texts)
    # Each channel says what carries it; without providers SMS and email would only reach the outbox.
    assert [(s["label"], s["transport"]) for s in preview["runbooks"][0]["steps"]] == [
        ("Step 1 · SMS to oncall", "outbox"),
        ("Step 2 · email to all-staff", "outbox"),
        ("Step 3 · status page", "status"),
    ]
    assert preview["outbox_only"] == ["sms", "email"]
    created = api("POST", "/activations", body)
    assert created.status_code == 201, created.get_json()
    activation = api("GET", f"/activations/{created.get_json()['activations'][0]['activation_id']}").get_json()
    assert activation["reason"] == "ticket INC-4711" and activation["message"] == "Use SMS for now."
    spec = api("GET", "/openapi.json").get_json()
    fields = spec["components"]["schemas"]["ActivationCreate"]["properties"]
    assert "never sent" in fields["reason"]["description"] and "shown to recipients" in fields["message"]["description"]


def test_activate_follow_progress_and_stand_down(api: Api, runtime: Runtime) -> None:
    created = api("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "451 4.3.2"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["incident_id"] == 1 and body["activations"][0]["counts"] == {"sms": 3, "email": 7, "status": 1}
    sent_all(runtime)
    progress = api("GET", "/activations/1").get_json()
    assert progress["done"] and progress["progress"]["sent"] == 11 and progress["requested_by"] == "api:automation"
    incident = api("GET", "/incidents/1").get_json()
    assert incident["source"] == "api" and [a["runbook"] for a in incident["activations"]] == ["exchange-outage"]
    resolved = api("POST", "/incidents/1/resolve", {"note": "Exchange is back"})
    assert resolved.status_code == 200
    assert resolved.get_json()["incident"]["state"] == "resolved" and len(resolved.get_json()["all_clear"]) == 1
    again = api("POST", "/incidents/1/resolve", {})
    assert again.status_code == 409 and again.get_json() == {"error": "incident 1 is already resolved", "status": 409}
    assert [i["id"] for i in api("GET", "/incidents?state=resolved").get_json()["incidents"]] == [1]
    assert api("GET", "/incidents?state=open").get_json()["incidents"] == []


def test_approval_needs_another_token_or_operator(api: Api, app: Flask, runtime: Runtime) -> None:
    created = api("POST", "/activations", {"runbooks": ["m365-suite-outage"], "reason": "everything is down"})
    activation = created.get_json()["activations"][0]
    assert activation["state"] == "pending_approval"
    own = api("POST", f"/activations/{activation['activation_id']}/approve")
    assert own.status_code == 403 and "another operator must approve" in own.get_json()["error"]
    other = make_api(app, runtime, "second-operator", "operator")
    approved = other("POST", f"/activations/{activation['activation_id']}/approve")
    assert approved.status_code == 200 and approved.get_json()["state"] == "queued"


def test_notices_through_the_api(api: Api, app: Flask, runtime: Runtime) -> None:
    created = api("POST", "/notices", {"title": "Phones only", "body": "Call the desk.", "severity": "minor"})
    assert created.status_code == 201 and created.get_json()["created_by"] == "api:automation"
    patched = api("PATCH", "/notices/1", {"severity": "critical"})
    assert patched.get_json()["severity"] == "critical" and patched.get_json()["title"] == "Phones only"
    assert app.test_client().get("/status.json").get_json()["status"] == "critical"
    assert api("POST", "/notices/1/close").get_json()["state"] == "closed"
    assert api("GET", "/notices?state=open").get_json() == {"notices": []}
    assert api("PATCH", "/notices/1", {"title": "x"}).status_code == 409  # closed


def test_the_audit_log_pages_and_filters(api: Api) -> None:
    for n in range(3):
        api("POST", "/notices", {"title": f"n{n}", "body": "b"})
    first = api("GET", "/audit?limit=2&action=notice.*").get_json()
    assert [e["action"] for e in first["events"]] == ["notice.posted", "notice.posted"]
    second = api("GET", f"/audit?limit=2&action=notice.*&before_id={first['next_before_id']}").get_json()
    assert len(second["events"]) == 1 and second["next_before_id"] is None
    assert api("GET", "/audit?since=2999-01-01T00:00:00Z").get_json()["events"] == []
    assert api("GET", "/audit/verify").get_json()["ok"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/activations", None, 400, "the body must be a JSON object"),
        ("POST", "/activations", ["exchange-outage"], 400, "the body must be a JSON object"),
        ("POST", "/activations", {"runbooks": [], "reason": "x"}, 400, "runbooks: List should have at least 1 item"),
        ("POST", "/activations", {"runbooks": ["nope"], "reason": "x"}, 400, "unknown runbook(s): nope"),
        ("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "   "}, 400, "reason: String should"),
        ("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "x", "extra": 1}, 400, "extra: Extra"),
        ("POST", "/activations", {"runbooks": ["exchange-outage"], "reason": "a\x00b"}, 400, "reason contains a NUL"),
        ("GET", "/incidents?limit=0", None, 400, "limit: Input should be greater than or equal to 1"),
        ("GET", "/incidents?state=maybe", None, 400, "state: Input should be"),
        ("GET", "/incidents/99", None, 404, "no incident 99"),
        ("GET", "/incidents/0", None, 404, None),
        ("GET", "/incidents/99999999999999999999", None, 404, None),
        ("GET", "/audit?since=yesterday", None, 400, "since: must be an RFC 3339 date-time"),
        ("GET", "/audit?since=2026-02-30T00:00:00Z", None, 400, "is not a real date"),
        ("PATCH", "/notices/1", {}, 400, "give at least one of title, body, severity"),
        ("DELETE", "/notices/1", None, 405, None),
        ("GET", "/nothing-here", None, 404, None),
    ],
)
def test_errors_are_json_with_a_message(
    api: Api, method: str, path: str, body: Any, status: int, message: str | None
) -> None:
    api("POST", "/notices", {"title": "t", "body": "b"})
    response = api(method, path, body)
    assert response.status_code == status
    data = response.get_json()
    assert data["status"] == status and isinstance(data["error"], str) and data["error"]
    if message:
        assert message in data["error"], data["error"]
