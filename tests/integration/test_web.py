"""The web app: health, the public status page, and the trigger form from preview to confirm (logged in)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from flask.testing import FlaskClient

from failover.clock import utcnow
from failover.engine import relay
from failover.runtime import Runtime
from tests.conftest import AuthActions, csrf_from


def sent_all(runtime: Runtime) -> None:
    """Stand in for the worker: send every published batch."""
    with runtime.database.reading() as session:
        batches = relay.batches_to_publish(session, utcnow(), 0)
    for batch in batches:
        runtime.delivery.send_batch(batch)


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": {"ok": True}, "broker": {"ok": True}}


def test_status_page_without_notices(client: FlaskClient) -> None:
    page = client.get("/status")
    assert page.status_code == 200 and b"All systems operational" in page.data
    assert client.get("/status.json").get_json() == {
        "status": "operational",
        "updated_at": None,
        "notices": [],
        "recent": [],
    }


def confirm_activation(client: FlaskClient, **fields: str) -> str:
    form = client.get("/activate")
    data = {
        "csrf_token": csrf_from(form.get_data(as_text=True)),
        "runbook": "exchange-outage",
        "reason": "Outlook answers 451 4.3.2",
        **fields,
    }
    preview = client.post("/activate", data=data)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    html = preview.get_data(as_text=True)
    assert "Confirm and send" in html
    confirmed = client.post("/activate", data={**data, "confirm": "yes", "fingerprint": fingerprint_from(html)})
    assert confirmed.status_code == 302
    return confirmed.headers["Location"]


def fingerprint_from(html: str) -> str:
    match = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html)
    assert match, "the preview carries no fingerprint"
    return match.group(1)


def test_trigger_preview_then_confirm(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    form = client.get("/activate")
    token = csrf_from(form.get_data(as_text=True))
    preview = client.post(
        "/activate", data={"csrf_token": token, "runbook": "exchange-outage", "reason": "Outlook answers 451 4.3.2"}
    )
    html = preview.get_data(as_text=True)
    assert "sms: 3" in html and "email: 7" in html and "status: 1" in html
    assert (
        '<td data-label="Person">erin</td><td data-label="Channel">email</td><td data-label="Why">no email address</td>'
        in html
    )
    assert "Do not rely on email" in html  # the rendered SMS text
    location = confirm_activation(client)
    assert location.endswith("/activations/1")
    sent_all(runtime)
    page = client.get(location).get_data(as_text=True)
    assert "+12025550101" not in page and "+1********01" in page  # masked
    progress = client.get("/activations/1.json").get_json()
    assert progress["progress"]["sent"] == 11 and progress["done"] and progress["state"] == "completed"
    outbox = client.get("/outbox").get_data(as_text=True)
    assert outbox.count('class="card outbox-message"') == 10


def test_status_page_shows_the_runbook_notice_in_html_json_and_atom(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator")
    confirm_activation(client)
    sent_all(runtime)
    html = client.get("/status").get_data(as_text=True)
    assert "Major disruption" in html and "Email delays" in html
    data = client.get("/status.json").get_json()
    assert data["status"] == "major" and data["notices"][0]["title"] == "Email delays"
    feed = ET.fromstring(client.get("/status/feed.atom").data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)] == ["Email delays"]


def test_stand_down_sends_the_all_clear(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    confirm_activation(client)
    sent_all(runtime)
    page = client.get("/incidents/1/resolve")
    assert "Stand down incident #1?" in page.get_data(as_text=True)
    assert "Email is working again" in page.get_data(as_text=True)  # the all-clear to be sent, shown first
    html = page.get_data(as_text=True)
    confirmed = {"csrf_token": csrf_from(html), "confirm": "yes", "fingerprint": fingerprint_from(html)}
    assert client.post("/incidents/1/resolve", data={"csrf_token": csrf_from(html)}).status_code == 200  # no preview
    response = client.post("/incidents/1/resolve", data=confirmed)
    assert response.status_code == 302
    sent_all(runtime)
    assert client.get("/status.json").get_json()["status"] == "operational"
    assert "resolved" in client.get("/incidents/1").get_data(as_text=True)


def test_a_form_without_csrf_token_is_refused(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    response = client.post("/activate", data={"runbook": "exchange-outage", "reason": "x", "confirm": "yes"})
    assert response.status_code == 400
    assert b"The CSRF token is missing" in response.data


def test_a_missing_reason_is_a_400_with_the_form_again(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    token = csrf_from(client.get("/activate").get_data(as_text=True))
    response = client.post("/activate", data={"csrf_token": token, "runbook": "exchange-outage", "reason": ""})
    assert response.status_code == 400 and b"say why you are activating" in response.data


def test_an_unknown_runbook_is_a_400(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    token = csrf_from(client.get("/activate").get_data(as_text=True))
    response = client.post("/activate", data={"csrf_token": token, "runbook": "nope", "reason": "x"})
    assert response.status_code == 400 and b"is not a valid choice" in response.data


def test_an_oversized_override_is_a_400_not_a_500(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    token = csrf_from(client.get("/activate").get_data(as_text=True))
    response = client.post(
        "/activate", data={"csrf_token": token, "runbook": "exchange-outage", "reason": "x", "override": "y" * 2000}
    )
    assert response.status_code == 400


def test_unknown_ids_are_404_in_html_and_json(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("operator")
    assert client.get("/activations/999").status_code == 404
    response = client.get("/activations/999.json")
    assert response.status_code == 404 and response.get_json() == {"error": "no activation 999", "status": 404}
    assert client.get("/incidents/5").status_code == 404
