"""The public page in every state: HTML, the Statuspage v2 JSON (documented field names), Atom, RSS, badge."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from freezegun import freeze_time

from tests.conftest import SQLITE_ONLY
from tests.integration.statuspage.conftest import Wired

pytestmark = [pytest.mark.integration, SQLITE_ONLY]

# The Atlassian Statuspage public v2 documents' fields (developer.statuspage.io, "Status API").
PAGE_FIELDS = {"id", "name", "url", "time_zone", "updated_at"}
STATUS_FIELDS = {"indicator", "description"}
COMPONENT_FIELDS = {
    "id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
    "start_date", "group_id", "page_id", "group", "only_show_if_degraded",
}  # fmt: skip
INCIDENT_FIELDS = {
    "id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
    "shortlink", "started_at", "page_id", "incident_updates", "components",
}  # fmt: skip
UPDATE_FIELDS = {
    "id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
    "affected_components", "deliver_notifications", "custom_tweet", "tweet_id",
}  # fmt: skip
MAINTENANCE_FIELDS = INCIDENT_FIELDS | {"scheduled_for", "scheduled_until"}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
COMPONENT_STATES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}


def post(wired: Wired, **fields: Any) -> int:
    status = wired.runtime.status
    return status.open_incident(item=status.draft(**fields), actor="alice")


def update(wired: Wired, notice_id: int, **fields: Any) -> int:
    status = wired.runtime.status
    return status.post_update(notice_id=notice_id, item=status.draft(need_title=False, title="", **fields), actor="bob")


def v2(wired: Wired, name: str) -> Any:
    response = wired.client.get(f"/api/v2/{name}")
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    return response.get_json()


def test_an_operational_page_in_every_format(wired: Wired) -> None:
    html = wired.client.get("/status").get_data(as_text=True)
    assert "All Systems Operational" in html and "Contoso status" in html and "+1 202 555 0199" in html
    assert html.count('class="component"') == 4 and "Microsoft 365</div>" in html  # a group heading
    assert html.count('<span class="b-operational"') == 4 * 90  # 90 days per component
    summary = v2(wired, "summary.json")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(summary["page"]) == PAGE_FIELDS and summary["status"] == {
        "indicator": "none",
        "description": "All Systems Operational",
    }
    plain = [c for c in summary["components"] if not c["group"]]
    assert [c["name"] for c in plain] == ["Exchange Online", "Microsoft Teams", "Microsoft 365 suite", "VPN"]
    assert all(COMPONENT_FIELDS <= set(c) for c in summary["components"])
    group = next(c for c in summary["components"] if c["group"])
    assert group["name"] == "Microsoft 365" and group["components"] == ["exchange-online", "microsoft-teams"]
    assert plain[0]["group_id"] == group["id"]
    assert wired.client.get("/status.json").get_json()["status"] == "operational"  # the old shape still answers


def test_every_component_state_and_incident_status_is_rendered(wired: Wired) -> None:
    states = {
        "Exchange Online": "degraded_performance",
        "Microsoft Teams": "partial_outage",
        "Microsoft 365 suite": "major_outage",
    }
    with freeze_time("2026-12-01 09:00:00"):
        first = post(wired, title="Mail is slow", body="We are **looking**.", impact="critical", components=states)
    with freeze_time("2026-12-01 09:20:00"):
        update(wired, first, progress="identified", body="A faulty router.", impact="critical")
    with freeze_time("2026-12-01 09:40:00"):
        update(wired, first, progress="monitoring", body="Fixed, watching.", impact="critical")
    with freeze_time("2026-12-01 10:00:00"):
        window = post(
            wired,
            kind="maintenance",
            title="VPN upgrade",
            body="New firmware.",
            components={"VPN": "under_maintenance"},
            scheduled_for=dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC),
            scheduled_until=dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC),
        )
    with freeze_time("2026-12-01 10:30:00"):
        html = wired.client.get("/status").get_data(as_text=True)
        summary = v2(wired, "summary.json")
    for label in ("Degraded performance", "Partial outage", "Major outage", "Under maintenance"):
        assert label in html
    for label in ("Investigating", "Identified", "Monitoring", "Scheduled"):
        assert label in html
    assert "Major Service Outage" in html and "<strong>looking</strong>" in html
    assert summary["status"]["indicator"] == "critical"
    assert {c["name"]: c["status"] for c in summary["components"] if not c["group"]} == {
        **states,
        "VPN": "under_maintenance",
    }
    incident = summary["incidents"][0]
    assert set(incident) == INCIDENT_FIELDS and incident["status"] == "monitoring" and incident["impact"] == "critical"
    assert [u["status"] for u in incident["incident_updates"]] == ["monitoring", "identified", "investigating"]
    assert all(set(u) == UPDATE_FIELDS for u in incident["incident_updates"])
    assert incident["monitoring_at"] == "2026-12-01T09:40:00.000Z"
    maintenance = summary["scheduled_maintenances"][0]
    assert set(maintenance) == MAINTENANCE_FIELDS and maintenance["scheduled_for"] == "2026-12-01T10:00:00.000Z"

    with freeze_time("2026-12-01 11:00:00"):
        update(wired, first, progress="resolved", body="All good.", impact="critical")
        update(wired, window, kind="maintenance", progress="completed", body="Done.")
    with freeze_time("2026-12-01 11:05:00"):
        summary = v2(wired, "summary.json")
        unresolved = v2(wired, "incidents/unresolved.json")
        incidents = v2(wired, "incidents.json")
        maintenances = v2(wired, "scheduled-maintenances.json")
        status = v2(wired, "status.json")
        components = v2(wired, "components.json")
        html = wired.client.get("/status").get_data(as_text=True)
    assert summary["status"]["indicator"] == "none" and unresolved["incidents"] == []
    assert incidents["incidents"][0]["status"] == "resolved" and incidents["incidents"][0]["resolved_at"]
    assert maintenances["scheduled_maintenances"][0]["status"] == "completed"
    assert set(status) == {"page", "status"} and status["status"]["indicator"] in INDICATORS
    assert {c["status"] for c in components["components"]} <= COMPONENT_STATES
    assert "Past incidents" in html and "Resolved" in html and "Completed" in html
    assert 'class="b-major_outage"' in html  # today's bar of the suite remembers the outage


def test_hostile_text_is_escaped_everywhere_and_oversized_text_refused(wired: Wired) -> None:
    from failover.errors import InvalidRequest

    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"'
    post(wired, title=hostile, body=hostile, impact="minor", components={"VPN": "degraded_performance"})
    html = wired.client.get("/status").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    for feed in ("/status/feed.atom", "/status/feed.rss", "/status/components/vpn/feed.atom"):
        text = ET.tostring(ET.fromstring(wired.client.get(feed).data), encoding="unicode")  # still well-formed XML
        assert "alert(1)" in text and "<script>" not in text  # the markup travels as escaped text
    assert v2(wired, "summary.json")["incidents"][0]["name"] == hostile  # JSON carries text, not markup
    with pytest.raises(InvalidRequest, match="longer than 10000"):
        wired.runtime.status.draft(title="Big", body="x" * 100_000)
    with pytest.raises(InvalidRequest, match="unknown component"):
        wired.runtime.status.draft(title="Odd", body="text", components={"<b>nope</b>": "major_outage"})
    with pytest.raises(InvalidRequest, match="component state must be one of"):
        wired.runtime.status.draft(title="Odd", body="text", components={"VPN": "on fire"})


def test_feeds_badge_and_unknown_documents(wired: Wired) -> None:
    post(
        wired,
        title="Teams calls drop",
        body="Calls drop after a minute.",
        components={"Microsoft Teams": "partial_outage"},
    )
    ns = {"a": "http://www.w3.org/2005/Atom"}
    atom = ET.fromstring(wired.client.get("/status/feed.atom").data)
    assert [e.findtext("a:title", namespaces=ns) for e in atom.findall("a:entry", ns)] == ["Teams calls drop"]
    assert atom.find("a:link[@rel='self']", ns).get("href") == "https://failover.example/status/feed.atom"  # type: ignore[union-attr]
    rss = ET.fromstring(wired.client.get("/status/feed.rss").data)
    assert [i.findtext("title") for i in rss.iter("item")] == ["Teams calls drop"]
    teams = ET.fromstring(wired.client.get("/status/components/microsoft-teams/feed.rss").data)
    vpn = ET.fromstring(wired.client.get("/status/components/vpn/feed.rss").data)
    assert len(list(teams.iter("item"))) == 1 and len(list(vpn.iter("item"))) == 0
    badge = wired.client.get("/status/badge.svg")
    assert badge.mimetype == "image/svg+xml" and "partial system outage" in badge.get_data(as_text=True)
    ET.fromstring(badge.data)
    assert wired.client.get("/status/components/nope/feed.rss").status_code == 404
    assert wired.client.get("/api/v2/pages.json").status_code == 404
    assert wired.client.get("/status/status.js").mimetype == "text/javascript"


def test_a_runbook_notice_is_an_incident_on_its_services_and_the_all_clear_resolves_it(wired: Wired) -> None:
    accepted, _ = wired.runtime.activations.activate(runbook_id="exchange-outage", reason="451 4.3.2", actor="alice")
    wired.drain()
    summary = v2(wired, "summary.json")
    assert summary["status"]["indicator"] == "major"
    exchange = next(c for c in summary["components"] if c["name"] == "Exchange Online")
    assert exchange["status"] == "partial_outage"
    assert summary["incidents"][0]["incident_updates"][0]["status"] == "investigating"
    wired.runtime.activations.resolve(incident_id=accepted.incident_id, actor="alice", note="back")
    wired.drain()
    summary = v2(wired, "summary.json")
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "none"
    resolved = v2(wired, "incidents.json")["incidents"][0]
    assert [u["status"] for u in resolved["incident_updates"]] == ["resolved", "investigating"]
