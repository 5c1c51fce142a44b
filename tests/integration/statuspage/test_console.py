"""Operators post incidents and updates from the console (always through a preview) and the API.

Admins see, export and remove subscribers.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from failover.clock import utcnow
from failover.engine import tokens
from failover.models import StatusSubscriber
from tests.conftest import SQLITE_ONLY, AuthActions, add_user, csrf_from
from tests.integration.statuspage.conftest import Wired

pytestmark = [pytest.mark.integration, SQLITE_ONLY]


def test_an_incident_from_the_console_goes_through_a_preview_then_the_page(wired: Wired, operator: AuthActions) -> None:
    with wired.runtime.database.transaction() as session:
        session.execute(
            insert(StatusSubscriber),
            [
                {
                    "kind": "email",
                    "address": "x@personal.example",
                    "state": "confirmed",
                    "confirm_sent": 1,
                    "created_at": utcnow(),
                }
            ],
        )
    console = wired.client.get("/statuspage").get_data(as_text=True)
    assert "All Systems Operational" in console
    fields = {
        "csrf_token": csrf_from(console),
        "kind": "incident",
        "title": "VPN drops",
        "impact": "minor",
        "body": "Connections drop <script>x()</script> after **5 minutes**.",
        "component:VPN": "degraded_performance",
        "component:Microsoft Teams": "unchanged",
    }
    preview = wired.client.post("/statuspage/post", data=fields)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "<strong>5 minutes</strong>" in html and "<script>x()" not in html
    assert "1 by email" in html and "[Contoso status] VPN drops: Investigating" in html
    assert "VPN drops" not in wired.client.get("/status").get_data(as_text=True)  # nothing posted by a preview
    posted = wired.client.post("/statuspage/post", data={**fields, "confirm": "yes"})
    assert posted.status_code == 302
    page = wired.client.get("/status").get_data(as_text=True)
    assert "VPN drops" in page and "Minor Service Outage" in page

    console = wired.client.get("/statuspage").get_data(as_text=True)
    notice_id = re.search(r'id="console-incident-(\d+)"', console).group(1)  # type: ignore[union-attr]
    update = {"csrf_token": csrf_from(console), "notice_id": notice_id, "kind": "incident", "progress": "resolved",
              "body": "Fixed.", "confirm": "yes"}  # fmt: skip
    assert wired.client.post("/statuspage/post", data=update).status_code == 302
    assert "All Systems Operational" in wired.client.get("/status").get_data(as_text=True)
    again = wired.client.post("/statuspage/post", data=update)
    assert again.status_code == 409  # resolved: a new update needs a new incident

    bad = wired.client.post("/statuspage/post", data={**fields, "body": "x" * 100_000})
    assert bad.status_code == 400 and "longer than 10000" in bad.get_data(as_text=True)
    window = {**fields, "kind": "maintenance", "scheduled_for": "2026-12-24T22:00", "scheduled_until": "later"}
    bad = wired.client.post("/statuspage/post", data=window)
    assert bad.status_code == 400 and "not a date and time" in bad.get_data(as_text=True)


def test_viewers_cannot_post_and_admins_manage_subscribers(wired: Wired) -> None:
    auth = AuthActions(wired.client, wired.runtime)
    auth.login("viewer")
    html = wired.client.get("/statuspage").get_data(as_text=True)
    assert wired.client.post("/statuspage/post", data={"csrf_token": csrf_from(html)}).status_code == 403
    assert wired.client.get("/statuspage/subscribers").status_code == 403
    with wired.runtime.database.transaction() as session:
        session.execute(
            insert(StatusSubscriber),
            [
                {
                    "kind": "sms",
                    "address": "+447911123456",
                    "state": "confirmed",
                    "confirm_sent": 1,
                    "created_at": utcnow(),
                }
            ],
        )
    auth.logout()
    auth.login("admin")
    page = wired.client.get("/statuspage/subscribers").get_data(as_text=True)
    assert "+447911123456" in page
    exported = wired.client.get("/statuspage/subscribers?format=csv").get_data(as_text=True)
    assert "'+447911123456" in exported  # a spreadsheet takes it as text, not a formula
    removed = wired.client.post("/statuspage/subscribers/1/remove", data={"csrf_token": csrf_from(page)})
    assert removed.status_code == 302 and wired.runtime.status.subscribers()[0]["state"] == "unsubscribed"
    added = wired.client.post(
        "/statuspage/webhooks", data={"csrf_token": csrf_from(page), "url": "https://hooks.example/s"}
    )
    assert added.status_code == 200 and re.search(r"<code>[0-9a-f]{64}</code>", added.get_data(as_text=True))
    refused = wired.client.post("/statuspage/webhooks", data={"csrf_token": csrf_from(page), "url": "ftp://x"})
    assert refused.status_code == 400


def test_the_api_posts_and_previews_status_incidents(wired: Wired) -> None:
    add_user(wired.runtime, "olga", "operator")
    with wired.runtime.database.transaction() as session:
        _, token = tokens.create(session, name="ci", role="operator", days=1, actor="seed", owner="olga")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"title": "Teams chat delayed", "body": "Messages arrive late.", "impact": "minor",
            "components": {"Microsoft Teams": "degraded_performance"}}  # fmt: skip
    dry = wired.client.post("/api/v1/status/incidents", json={**body, "dry_run": True}, headers=headers)
    assert dry.status_code == 200 and dry.get_json()["id"] is None and dry.get_json()["status"] == "investigating"
    assert wired.runtime.status.view().incidents == []
    created = wired.client.post("/api/v1/status/incidents", json=body, headers=headers)
    assert created.status_code == 201
    notice_id = created.get_json()["id"]
    update = wired.client.post(
        f"/api/v1/status/incidents/{notice_id}/updates",
        json={"status": "identified", "body": "A bad deploy."},
        headers=headers,
    )
    assert update.status_code == 201
    summary = wired.client.get("/api/v2/summary.json").get_json()
    assert [u["status"] for u in summary["incidents"][0]["incident_updates"]] == ["identified", "investigating"]
    assert summary["incidents"][0]["impact"] == "minor"  # an update without an impact keeps it
    wrong = wired.client.post(
        "/api/v1/status/incidents", json={**body, "components": {"Fax": "major_outage"}}, headers=headers
    )
    assert wrong.status_code == 400 and "unknown component" in wrong.get_json()["error"]
    assert wired.client.get("/api/v1/status/subscribers", headers=headers).status_code == 403  # admins only
    window = {"title": "Teams upgrade", "body": "Short drops.", "scheduled_for": "2026-12-24T22:00:00Z", "minutes": 90,
              "components": ["Microsoft Teams"]}  # fmt: skip
    planned = wired.client.post("/api/v1/status/maintenances", json=window, headers=headers)
    assert planned.status_code == 201 and planned.get_json()["components"] == {"Microsoft Teams": "under_maintenance"}
    maintenance = v2_maintenance = wired.client.get("/api/v2/scheduled-maintenances/upcoming.json").get_json()
    assert maintenance["scheduled_maintenances"][0]["scheduled_until"] == "2026-12-24T23:30:00.000Z", v2_maintenance
    wrong_kind = wired.client.post(
        f"/api/v1/status/incidents/{planned.get_json()['id']}/updates",
        json={"status": "monitoring", "body": "x"},
        headers=headers,
    )
    assert wrong_kind.status_code == 409  # a maintenance window is not monitored: it is verified
    missing = wired.client.post(
        "/api/v1/status/incidents/999/updates", json={"status": "resolved", "body": "x"}, headers=headers
    )
    assert missing.status_code == 404
