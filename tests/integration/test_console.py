"""The console's pages: preview details, approval by a second operator, drills, notices, audit views, admin."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from failover.models import Activation, Delivery
from failover.runtime import Runtime
from failover.web import create_app
from tests.conftest import AuthActions, csrf_from
from tests.integration.test_web import fingerprint_from, sent_all


def preview(client: FlaskClient, **fields: object):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get("/activate").get_data(as_text=True))
    data = {"csrf_token": token, "runbook": "exchange-outage", "reason": "Outlook answers 451 4.3.2", **fields}
    return client.post("/activate", data=data), data


def confirm(client: FlaskClient, **fields: object):  # type: ignore[no-untyped-def]
    page, data = preview(client, **fields)
    assert page.status_code == 200, page.get_data(as_text=True)
    fingerprint = fingerprint_from(page.get_data(as_text=True))
    return client.post("/activate", data={**data, "confirm": "yes", "fingerprint": fingerprint})


def test_the_preview_shows_segments_encoding_groups_skipped_and_cost(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover.settings import load_settings

    monkeypatch.setenv("FAILOVER_SMS_SEGMENT_PRICE", "0.0079")
    monkeypatch.setenv("FAILOVER_EMAIL_PRICE", "0.001")
    runtime.config.settings = load_settings()  # prices are read by the configuration in force
    client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, runtime).login("operator")
    page, _ = preview(client, override="It’s down: use SMS until further notice.")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "1 segment, UCS-2" in html and "UCS-2 because of <code>’</code>" in html
    assert re.search(r"<td data-label=\"Group\">oncall</td><td data-label=\"Recipients\">3</td>", html)
    assert re.search(r"<td data-label=\"Group\">all-staff</td><td data-label=\"Recipients\">7</td>", html)
    assert (
        '<td data-label="Person">erin</td><td data-label="Channel">email</td><td data-label="Why">no email address</td>'
        in html
    )
    # 3 SMS x 1 segment x 0.0079 + 7 emails x 0.001 = 0.0307
    assert "USD 0.0307" in html
    with runtime.database.reading() as session:
        assert session.scalar(select(Delivery.id)) is None  # a preview writes nothing


def test_the_preview_says_when_prices_are_not_configured(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    html = preview(client)[0].get_data(as_text=True)
    assert "3 SMS segment(s), 7 email(s); set FAILOVER_SMS_SEGMENT_PRICE" in html
    assert "1 segment, GSM-7" in html


def test_a_stale_preview_is_shown_again_instead_of_sent(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    page, data = preview(client)
    response = client.post("/activate", data={**data, "confirm": "yes", "fingerprint": "0" * 32})
    assert response.status_code == 409 and b"changed since your preview" in response.data
    assert b"Confirm and send" in response.data


def test_several_runbooks_open_one_incident(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    response = confirm(client, runbook=["exchange-outage", "teams-outage"])
    assert response.status_code == 302 and response.headers["Location"] == "/incidents/1"
    with runtime.database.reading() as session:
        rows = session.execute(select(Activation.incident_id, Activation.runbook_id, Activation.state)).all()
    assert sorted(rows) == [(1, "exchange-outage", "queued"), (1, "teams-outage", "queued")]
    page = client.get("/incidents/1").get_data(as_text=True)
    assert "exchange-outage" in page and "teams-outage" in page and "incident.opened" in page  # the timeline


def test_an_approval_runbook_waits_for_a_second_operator(app: Flask, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator", username="olga")
    requested = confirm(auth.client, runbook="m365-suite-outage")
    assert requested.status_code == 302
    page = auth.client.get(requested.headers["Location"]).get_data(as_text=True)
    assert "Waiting for a second operator" in page and 'id="approve"' not in page  # no button for oneself
    with runtime.database.reading() as session:
        assert session.scalar(select(Delivery.id)) is None
    # Even a forged request from the requester, with the right fingerprint, is refused by the engine.
    fingerprint = runtime.activations.approval_preview(activation_id=1).fingerprint
    own = auth.client.post("/activations/1/approve", data={"csrf_token": csrf_from(page), "fingerprint": fingerprint})
    assert own.status_code == 403 and b"another operator must approve" in own.data
    dashboard = auth.client.get("/").get_data(as_text=True)
    assert "Waiting for approval" in dashboard and "Activation #1: m365-suite-outage" in dashboard

    second = app.test_client()
    AuthActions(second, runtime).login("operator", username="pat")
    page = second.get("/activations/1").get_data(as_text=True)
    assert 'id="approve"' in page
    # The approver reads everything approving sends: every text, the counts, the cost and who is skipped.
    assert "Microsoft 365 is down (sign-in, email, Teams). Do not wait for email." in page
    assert "Step 1 · SMS to all-staff" in page and "sms: 7" in page and "email: 7" in page
    assert "SMS segment(s)" in page and 'id="skipped-count">2 skipped' in page
    approved = second.post("/activations/1/approve", data={"csrf_token": csrf_from(page), "fingerprint": fingerprint})
    assert approved.status_code == 302
    detail = second.get("/activations/1.json").get_json()
    assert detail["state"] == "queued" and detail["approved_by"] == "pat" and detail["requested_by"] == "olga"
    assert detail["progress"]["pending"] == 7 + 7 + 1  # all-staff: 7 phones, 7 addresses, the status page
    sent_all(runtime)
    assert second.get("/activations/1.json").get_json()["done"]


def test_a_pending_activation_can_be_withdrawn(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    confirm(client, runbook="m365-suite-outage")
    page = client.get("/activations/1").get_data(as_text=True)
    assert client.post("/activations/1/cancel", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert client.get("/activations/1.json").get_json()["state"] == "cancelled"


def test_a_drill_reaches_only_the_drill_group_and_leaves_the_status_page(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator")
    page, _ = preview(client, drill="y")
    html = page.get_data(as_text=True)
    assert "[DRILL]" in html and "drill: public status page left alone" in html
    assert confirm(client, drill="y").status_code == 302
    sent_all(runtime)
    with runtime.database.reading() as session:
        rows = session.execute(select(Delivery.person_id, Delivery.channel, Delivery.body, Delivery.status)).all()
    sent = [(person, channel) for person, channel, _, status in rows if status == "sent"]
    # it-leads is alice and carol: the drill group, whatever the steps address.
    assert {person for person, _ in sent} <= {"alice", "carol"} and sent
    assert all(body.startswith("[DRILL] ") for _, _, body, status in rows if status == "sent")
    assert client.get("/status.json").get_json()["status"] == "operational"
    assert client.get("/incidents/1").get_data(as_text=True).count("drill") >= 1


def test_operators_post_edit_and_close_notices(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator", username="olga")
    form = client.get("/notices/new").get_data(as_text=True)
    posted = client.post(
        "/notices/new",
        data={"csrf_token": csrf_from(form), "title": "Call the desk", "body": "Dial **x1234**.", "severity": "minor"},
    )
    assert posted.status_code == 302
    status = client.get("/status.json").get_json()
    assert status["status"] == "minor" and status["notices"][0]["title"] == "Call the desk"
    edit = client.get("/notices/1/edit").get_data(as_text=True)
    assert "Call the desk" in edit
    updated = client.post(
        "/notices/1/edit",
        data={"csrf_token": csrf_from(edit), "title": "Call the desk", "body": "Dial x5678.", "severity": "major"},
    )
    assert updated.status_code == 302
    assert client.get("/status.json").get_json()["notices"][0]["body"] == "Dial x5678."
    listing = client.get("/notices").get_data(as_text=True)
    closed = client.post("/notices/1/close", data={"csrf_token": csrf_from(listing)})
    assert closed.status_code == 302
    status = client.get("/status.json").get_json()
    assert status["status"] == "operational" and status["recent"][0]["state"] == "closed"
    again = client.post("/notices/1/close", data={"csrf_token": csrf_from(listing)})
    assert again.status_code == 409 and b"already closed" in again.data
    audit = client.get("/audit?action=notice.*").get_data(as_text=True)
    assert audit.count("notice.") >= 3 and "olga" in audit
    empty = client.post("/notices/new", data={"csrf_token": csrf_from(form), "title": "", "body": ""})
    assert empty.status_code == 400


def test_the_audit_log_filters_exports_and_verifies(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator", username="olga")
    confirm(client)
    page = client.get("/audit").get_data(as_text=True)
    assert "Chain verified:" in page
    only_olga = client.get("/audit?actor=olga&action=auth.*").get_data(as_text=True)
    assert ">auth.login</td>" in only_olga and ">activation.queued</td>" not in only_olga
    by_incident = client.get("/audit?incident=1").get_data(as_text=True)
    assert ">incident.opened</td>" in by_incident and ">auth.login</td>" not in by_incident
    assert "No events match" in client.get("/audit?since=2099-01-01T00:00").get_data(as_text=True)

    exported = client.get("/audit?format=csv&incident=1")
    assert exported.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["incident.opened", "activation.queued"]
    assert json.loads(rows[0]["details"])["source"] == "manual" and len(rows[0]["hash"]) == 64

    data = json.loads(client.get("/audit?format=json").get_data(as_text=True))
    assert data["chain"]["ok"] and [e["id"] for e in data["events"]] == list(range(1, len(data["events"]) + 1))

    with runtime.database.transaction() as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 2"))
    assert "Chain broken" in client.get("/audit").get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["since=yesterday", "incident=abc", "incident=0", "actor=%00", "format=xml", "before=-1"]
)
def test_bad_audit_filters_are_400_not_500(client: FlaskClient, auth: AuthActions, query: str) -> None:
    auth.login("viewer")
    assert client.get(f"/audit?{query}").status_code == 400


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("auth.login", "auth.login"), (7, 7)],
)
def test_csv_export_defuses_spreadsheet_formulas(value: object, cell: object) -> None:
    from failover.web.audit import _cell

    assert _cell(value) == cell


def test_an_admin_creates_a_token_that_is_shown_once(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("admin")
    page = client.get("/admin/tokens").get_data(as_text=True)
    created = client.post(
        "/admin/tokens", data={"csrf_token": csrf_from(page), "name": "monitoring", "role": "viewer", "days": "30"}
    )
    assert created.status_code == 201
    token = re.search(r'id="new-token">(fo_[\w-]+)<', created.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert token not in client.get("/admin/tokens").get_data(as_text=True)
    api = client.application.test_client()
    assert api.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with runtime.database.reading() as session:
        stored = session.execute(text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert token not in stored and len(stored) == 64


def test_an_admin_manages_users_but_never_removes_the_last_admin(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("admin", username="root")
    page = client.get("/admin/users").get_data(as_text=True)
    added = client.post(
        "/admin/users",
        data={"csrf_token": csrf_from(page), "username": "vic", "role": "viewer", "password": "long enough password"},
    )
    assert added.status_code == 302
    users_page = client.get("/admin/users").get_data(as_text=True)
    assert "vic" in users_page
    vic_id = 2
    promoted = client.post(
        f"/admin/users/{vic_id}", data={"csrf_token": csrf_from(page), "action": "role", "role": "operator"}
    )
    assert promoted.status_code == 302
    demote_self = client.post(
        "/admin/users/1", data={"csrf_token": csrf_from(page), "action": "role", "role": "viewer"}
    )
    assert demote_self.status_code == 400 and b"last enabled admin" in demote_self.data
    short = client.post("/admin/users", data={"csrf_token": csrf_from(page), "username": "x", "password": "short"})
    assert short.status_code == 400 and b"at least 12 characters" in short.data
