"""Working an open incident: add a runbook, send an update, stand down with an edited or skipped all-clear.

Every send is previewed first, goes through the ledger, is audited, and a
resubmitted confirm sends nothing twice. The demo contacts: oncall = alice,
bob, heidi; all-staff = everyone but erin has an email address.
"""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from failover.models import Activation, AuditEvent, Delivery, Notice, OutboxMessage
from failover.runtime import Runtime
from tests.conftest import AuthActions, csrf_from
from tests.integration.test_console import confirm
from tests.integration.test_web import fingerprint_from, sent_all

pytestmark = pytest.mark.integration


@pytest.fixture
def opened(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> FlaskClient:
    """Incident 1: exchange-outage activated from the console and sent."""
    auth.login("operator")
    assert confirm(client).status_code == 302
    sent_all(runtime)
    return client


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" (?:type="hidden" )?value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return match.group(1)


def count(runtime: Runtime, model: type, *where: object) -> int:
    with runtime.database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.database.reading() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_a_runbook_is_added_to_the_open_incident_after_a_preview_and_once(
    opened: FlaskClient, runtime: Runtime
) -> None:
    client = opened
    assert 'href="/incidents/1/runbooks"' in client.get("/incidents/1").get_data(as_text=True)
    form = client.get("/incidents/1/runbooks").get_data(as_text=True)
    assert 'value="teams-outage"' in form and 'value="exchange-outage"' not in form  # already in this incident
    data = {"csrf_token": csrf_from(form), "runbook": "teams-outage", "reason": "Teams is dark too"}
    preview = client.post("/incidents/1/runbooks", data=data)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Teams unavailable" in html and "Confirm and send" in html
    assert count(runtime, Activation) == 1  # a preview writes nothing
    data |= {"confirm": "yes", "fingerprint": fingerprint_from(html)}
    assert client.post("/incidents/1/runbooks", data=data).status_code == 302
    again = client.post("/incidents/1/runbooks", data=data)  # a double tap, or the back button
    assert again.status_code == 302
    with runtime.database.reading() as session:
        added = session.scalars(select(Activation).where(Activation.runbook_id == "teams-outage")).all()
    assert [(a.incident_id, a.phase) for a in added] == [(1, "steps")]
    assert [e.incident_id for e in events(runtime, "activation.queued")] == [1, 1]


def test_an_update_goes_to_the_incidents_recipients_or_only_the_silent_previewed_and_once(
    opened: FlaskClient, runtime: Runtime
) -> None:
    client = opened
    runtime.tracking.acknowledge_on_behalf(activation_id=1, person_id="alice", actor="test")
    form = client.get("/incidents/1/update").get_data(as_text=True)
    assert "{{ eta" in form  # the template, to edit
    data = {
        "csrf_token": csrf_from(form),
        "key": hidden(form, "key"),
        "audience": "silent",
        "channels": ["sms", "email"],
        "subject": "Update: {{ incident.title }}",
        "text": "Still down. Back by {{ eta }}. News: {{ status_url }}",
        "eta": "14:00",
        "status_url": "https://status.example.org/",
    }
    preview = client.post("/incidents/1/update", data=data)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Still down. Back by 14:00. News: https://status.example.org/" in html
    assert "sms: 2" in html and "email: 6" in html  # alice answered: neither her SMS nor her email
    assert count(runtime, Activation) == 1
    data |= {"confirm": "yes", "fingerprint": fingerprint_from(html)}
    assert client.post("/incidents/1/update", data=data).status_code == 302
    assert client.post("/incidents/1/update", data=data).status_code == 302  # resubmitted: nothing more
    sent_all(runtime)
    with runtime.database.reading() as session:
        (update,) = session.scalars(select(Activation).where(Activation.phase.like("update.%"))).all()
        rows = {
            (d.person_id, d.channel, d.status)
            for d in session.scalars(select(Delivery).where(Delivery.activation_id == update.id))
        }
        bodies = {
            m.body
            for m in session.scalars(select(OutboxMessage).join(Delivery).where(Delivery.activation_id == update.id))
        }
    assert ("alice", "sms", "sent") not in rows and ("bob", "sms", "sent") in rows and ("heidi", "sms", "sent") in rows
    assert len([r for r in rows if r[1] == "email"]) == 6
    assert bodies == {"Still down. Back by 14:00. News: https://status.example.org/"}
    assert client.get(f"/activations/{update.id}").status_code == 200  # an activation like any other
    (event,) = events(runtime, "update.queued")
    assert (
        event.incident_id == 1
        and event.details["audience"] == "silent"
        and event.details["counts"] == {"sms": 2, "email": 6}
    )
    # Everyone, this time: the same people and channels as the incident's own messages.
    form = client.get("/incidents/1/update").get_data(as_text=True)
    data |= {"csrf_token": csrf_from(form), "key": hidden(form, "key"), "audience": "all", "confirm": ""}
    html = client.post("/incidents/1/update", data=data).get_data(as_text=True)
    assert "sms: 3" in html and "email: 7" in html


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a form check: one database is enough
def test_an_update_template_that_uses_unknown_names_is_a_400(opened: FlaskClient) -> None:
    form = opened.get("/incidents/1/update").get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(form),
        "key": hidden(form, "key"),
        "audience": "all",
        "channels": ["sms"],
        "subject": "x",
        "text": "Back at {{ etta }}",
        "eta": "",
        "status_url": "https://s.example/",
    }
    response = opened.post("/incidents/1/update", data=data)
    assert response.status_code == 400 and "etta" in response.get_data(as_text=True)


def test_stand_down_resolves_the_notice_it_opened_instead_of_posting_a_second_card(
    opened: FlaskClient, runtime: Runtime
) -> None:
    client = opened
    page = client.get("/incidents/1/resolve").get_data(as_text=True)
    form = {
        "csrf_token": csrf_from(page),
        "override": "All good again. Email works.",
        "confirm": "yes",
        "fingerprint": hidden(page, "fingerprint"),
    }
    changed = client.post("/incidents/1/resolve", data=form)  # the text changed after the preview: shown again
    html = changed.get_data(as_text=True)
    assert changed.status_code == 409 and "All good again. Email works." in html
    form["fingerprint"] = hidden(html, "fingerprint")
    assert client.post("/incidents/1/resolve", data=form).status_code == 302
    sent_all(runtime)
    status = client.get("/status.json").get_json()
    assert status["status"] == "operational" and status["notices"] == []
    (card,) = status["recent"]  # one card: the outage notice, resolved with the all-clear
    assert card["title"] == "Email delays" and card["state"] == "closed"
    assert card["resolution"] == "Service is restored. Thank you for your patience."
    assert "Service is restored" in client.get("/status").get_data(as_text=True)
    with runtime.database.reading() as session:
        bodies = {
            m.body
            for m in session.scalars(select(OutboxMessage).join(Delivery).where(Delivery.step.like("on_resolve.%")))
        }
    assert bodies == {"All good again. Email works."}  # the edited SMS and email all-clear
    assert count(runtime, Notice) == 1


def test_stand_down_can_skip_the_all_clear(opened: FlaskClient, runtime: Runtime) -> None:
    client = opened
    page = client.get("/incidents/1/resolve").get_data(as_text=True)
    form = {
        "csrf_token": csrf_from(page),
        "skip_all_clear": "y",
        "override": "",
        "confirm": "yes",
        "fingerprint": hidden(page, "fingerprint"),
    }
    preview = client.post("/incidents/1/resolve", data=form)
    assert preview.status_code == 409 and "No all-clear is sent" in preview.get_data(as_text=True)
    form["fingerprint"] = hidden(preview.get_data(as_text=True), "fingerprint")
    assert client.post("/incidents/1/resolve", data=form).status_code == 302
    assert count(runtime, Activation, Activation.phase == "on_resolve") == 0
    (resolved,) = events(runtime, "incident.resolved")
    assert resolved.details["all_clear"] == "skipped" and resolved.details["notices_closed"] == 1
    assert client.get("/status.json").get_json()["status"] == "operational"
