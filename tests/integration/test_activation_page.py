"""The activation page on the worst day: live until the receipts settle, and "who was not reached" at 3,000 people.

Issue 10, items 3, 4 and 8. The 3,000-person activation is planned by the
real engine (no worker) and its outcome written with a few bulk UPDATEs, so
the test stays quick; its failures sit past row 2,000, where the old page
silently stopped reading.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, update

from failover.clock import utcnow
from failover.db import migrate
from failover.models import Answer, Delivery
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from tests.conftest import PROVIDER_VARIABLES, AuthActions, csrf_from, make_people, write_config
from tests.integration.test_console import confirm, preview
from tests.integration.test_web import fingerprint_from, sent_all

PEOPLE = 3000
EVERYONE = textwrap.dedent("""\
    id: everyone
    title: Microsoft 365 is down
    description: Tell everyone by SMS and personal mail.
    trigger: {activation: manual}
    steps:
      - {channel: sms, to: [group:all-staff], text: "M365 is down. Reply 1 if you can work, 2 if not.", check_in: true}
      - {channel: email, to: [group:all-staff], subject: "M365 is down", text: "Use SMS until further notice."}
    escalation:
      - {after: 15m, if: unacknowledged, channel: sms, to: [group:it-leads], text: "Staff are silent."}
    """)


def ids(first: int, last: int) -> list[str]:
    return [f"p{n:05d}" for n in range(first, last + 1)]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """A 3,000-person activation: SMS and email to everyone, its receipts and answers written in bulk.

    Built once for the module (a few seconds); the test that changes it runs last.
    """
    tmp_path = tmp_path_factory.mktemp("big")
    people = make_people(PEOPLE, groups=("all-staff",))
    for person in people[-20:]:  # no number, no address: nothing can reach them
        del person["phone"], person["email"]
    people[0]["groups"] = ["all-staff", "it-leads"]
    people[0]["name"] = "Lena Lead"
    books = tmp_path / "books"
    (books / "templates").mkdir(parents=True)
    (books / "everyone.yaml").write_text(EVERYONE)
    config, _ = write_config(tmp_path, people, runbooks_from=books)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in PROVIDER_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in {
            "FAILOVER_DATA_DIR": str(tmp_path / "var"),
            "FAILOVER_SECRET_KEY": "test-secret-key",
            "FAILOVER_CONFIG_DIR": str(config),
            "FAILOVER_RUNBOOKS_DIR": str(tmp_path / "runbooks"),
            "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'big.db'}",
        }.items():
            monkeypatch.setenv(name, value)
        runtime = Runtime(load_settings())
    migrate(runtime.database)
    accepted, _ = runtime.activations.activate(runbook_id="everyone", reason="3,000 people", actor="olga")
    now = utcnow()
    with runtime.database.transaction() as session:
        sent = {"sent_at": now, "updated_at": now, "batch_id": None}
        for channel, transport in (("sms", "twilio"), ("email", "sendgrid")):
            session.execute(
                update(Delivery)
                .where(Delivery.channel == channel, Delivery.status == "pending")
                .values(status="sent", transport=transport, **sent)
            )
        session.execute(  # SMS receipts: delivered to everyone before p02900
            update(Delivery)
            .where(Delivery.channel == "sms", Delivery.status == "sent", Delivery.person_id < "p02900")
            .values(status="delivered", receipt="delivered", delivered_at=now)
        )
        session.execute(  # ten SMS failed for good, far past row 2,000
            update(Delivery)
            .where(Delivery.channel == "sms", Delivery.person_id.in_(ids(2950, 2959)))
            .values(status="failed", error_code="30003", last_error="Unreachable destination handset")
        )
        answers = [(p, "ack") for p in ids(1, 100)] + [(p, "need_help") for p in ids(101, 105)]
        session.execute(
            insert(Answer),
            [
                {"activation_id": accepted.activation_id, "person_id": p, "answer": a, "via": "sms"}
                | {"first_at": now, "answered_at": now}
                for p, a in answers
            ],
        )
    client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, runtime).login("viewer")
    yield client
    runtime.close()


def test_at_3000_people_the_page_answers_who_was_not_reached(big: FlaskClient) -> None:
    response = big.get("/activations/1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and len(response.data) < 200_000, len(response.data)
    tile = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
    assert tile["failed"] == "10" and tile["delivered"] == "2900" and tile["skipped"] == "40"
    # Every failure is counted and listed, though all of them are past row 2,000.
    failures = re.search(r'<table class="stack" id="failures">(.*?)</table>', page, re.S)
    assert failures is not None and "data-failures-total>10<" in page
    assert re.findall(r'data-person="(p\d+)"', failures.group(1)) == ids(2950, 2959)
    counts = dict(re.findall(r'data-filter-count="(\w+)">(\d+)<', page))
    assert counts == {
        "all": "3000",
        "not_reached": "80",  # p02900-p02979: no receipt and no answer (the ten failures among them)
        "failed": "10",
        "no_answer": str(2980 - 105),
        "need_help": "5",
        "unreachable": "20",  # no channel at all: never "not yet"
    }
    assert re.search(r'data-people="reached">2900<', page) and re.search(r'data-people="asked">2980<', page)

    failed = big.get("/activations/1?show=failed").get_data(as_text=True)
    assert people_listed(failed) == ids(2950, 2959) and "10 people failed" in failed
    unreachable = big.get("/activations/1?show=unreachable").get_data(as_text=True)
    assert people_listed(unreachable) == ids(2980, 2999)
    assert unreachable.count("unreachable: no channel</span>") == 20
    assert people_listed(big.get("/activations/1?q=person 2955").get_data(as_text=True)) == ["p02955"]
    second = big.get("/activations/1?show=no_answer&page=2").get_data(as_text=True)
    assert len(people_listed(second)) == 50 and "page 2 of 58" in second and 'rel="next"' in second
    assert len(big.get("/api/v1/activations/1").get_json()["failures"]) == 10  # the API has no cut either


def test_the_open_page_polls_a_version_and_gets_only_what_changed(big: FlaskClient) -> None:
    page = big.get("/activations/1").get_data(as_text=True)
    version = re.search(r'data-version="(\w+)"', page)
    assert version is not None and 'data-live="true"' in page  # receipts outstanding, incident open
    same = big.get(f"/activations/1/live.json?v={version.group(1)}")
    assert same.get_json() == {"version": version.group(1), "changed": False} and len(same.data) < 100

    runtime: Runtime = big.application.extensions["failover"]
    with runtime.database.transaction() as session:  # a late receipt: one more SMS failed
        session.execute(
            update(Delivery)
            .where(Delivery.channel == "sms", Delivery.person_id == "p02960")
            .values(status="failed", error_code="30005", updated_at=utcnow())
        )
    changed = big.get(f"/activations/1/live.json?v={version.group(1)}&show=failed")
    data = changed.get_json()
    assert data["changed"] and data["progress"]["failed"] == 11 and data["failures"] == 11
    assert len(changed.data) < 60_000, len(changed.data)  # counts and one page, not 3,000 people
    assert "p02960" in data["html"]["failures"] and len(people_listed(data["html"]["people"])) == 11
    assert json.loads(changed.data)["live"] is True


def people_listed(html: str) -> list[str]:
    table = re.search(r'<table class="stack" id="people">(.*?)</table>', html, re.S)
    assert table is not None
    return re.findall(r'<tr data-person="(p\d+)"', table.group(1))


# -- item 3: live until receipts settle or the incident closes ------------------------------------------------


def test_the_page_stays_live_after_all_sent_until_receipts_settle_and_the_incident_closes(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator")
    confirm(client)
    sent_all(runtime)  # the outbox: sent, and nobody reached by it
    live = client.get("/activations/1/live.json").get_json()
    assert live["done"] and live["state"] == "completed" and live["live"]  # all sent, the incident still open
    page = client.get("/activations/1").get_data(as_text=True)
    assert 'data-count="in_doubt"' in page and 'data-count="cancelled"' in page
    assert re.search(r'data-people="reached">0<', page)  # handed to the outbox is not reached
    assert "went to the outbox only" in page
    with runtime.database.transaction() as session:  # a receipt after all were sent reaches the poll
        session.execute(update(Delivery).where(Delivery.person_id == "alice").values(status="failed"))
    assert client.get("/activations/1/live.json").get_json()["progress"]["failed"] == 2
    standing_down = client.get("/incidents/1/resolve").get_data(as_text=True)
    form = {"csrf_token": csrf_from(standing_down), "note": "over", "confirm": "yes"}
    form["fingerprint"] = fingerprint_from(standing_down)
    assert client.post("/incidents/1/resolve", data=form).status_code == 302
    assert client.get("/activations/1/live.json").get_json()["live"] is False  # outbox rows: nothing more to come


# -- item 8: readable on a phone under pressure ---------------------------------------------------------------


def test_the_pages_speak_to_people(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    form = client.get("/activate").get_data(as_text=True)
    assert "Tell on-call first, then everyone at their personal address" in form  # the runbook's description
    assert "Step 1 · SMS to oncall: 3 people" in form and "Step 2 · email to all-staff: 8 people" in form
    shown = preview(client)[0].get_data(as_text=True)
    assert "<b>Step 1 · SMS to oncall</b>" in shown and "steps.0" not in shown
    assert '<details class="skipped" id="skipped-list"><summary id="skipped-count">1 skipped' in shown
    confirm(client)
    page = client.get("/activations/1").get_data(as_text=True)
    assert "Step 1 · SMS to oncall" in page and ">steps.0<" not in page
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">\d\d:\d\d UTC, just now</time>', page)
    escalations = re.search(r'<table class="stack" id="escalations">(.*?)</table>', page, re.S)
    assert escalations is not None
    rows = escalations.group(1)
    # Whom each escalation pages if nobody answers, and when: a countdown the page keeps ticking.
    assert "Escalation 1 · SMS to it-leads" in rows and "would page Alice Example, Carol Example" in rows
    assert re.search(r'data-seconds-left="(600|59\d)">in (10:00|9:5\d)<', rows)
    assert "Escalation 2 · call to oncall" in rows and "would page Alice Example, Bob Example, Heidi Example" in rows


def test_drills_are_kept_apart_from_real_incidents(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    confirm(client, drill="y")
    confirm(client, runbook="teams-outage")
    dashboard = client.get("/").get_data(as_text=True)
    real = dashboard.split('<div id="open-incidents">')[1].split("<h2>Drills")[0]
    drills = dashboard.split('<div id="open-drills">')[1].split('<h2 id="watch">')[0]
    assert "#2 Teams is down" in real and "#1 " not in real
    assert "#1 Email is down" in drills and "DRILL" in drills
    assert "DRILL &middot; not a real incident" in client.get("/activations/1").get_data(as_text=True)
