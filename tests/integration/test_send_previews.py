"""Every send a person starts is previewed one way and confirmed explicitly; what goes out is said honestly.

Issue 10, items 5 and 6: "Confirm outage" on the dashboard, approvals and the
CLI show the same preview (texts, counts, cost, skipped) before anything is
sent; approvers are paged by SMS; the internal note never reaches anyone; the
preview names each channel's transport; a drill says [DRILL] once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from failover.cli import main
from failover.engine import activation as activation_use_cases
from failover.engine import tokens, users
from failover.models import Delivery, Incident, OutboxMessage
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from tests.conftest import REPO, AuthActions, csrf_from
from tests.integration.test_console import confirm, preview
from tests.integration.test_web import fingerprint_from, sent_all


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: these paths run no SQL of their own (the ledger writer, the preview and the read models
    they use are exercised on PostgreSQL by test_engine, test_console and test_activation_page)."""
    yield f"sqlite:///{tmp_path / 'failover.db'}"


def count(runtime: Runtime, model: type) -> int:
    with runtime.database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- item 5: sends that skipped the preview ------------------------------------------------------------------


def test_confirm_outage_on_the_dashboard_shows_what_it_sends_before_sending(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator")
    dashboard = client.get("/").get_data(as_text=True)
    assert 'action="/watch/confirm"' in dashboard
    form = {"csrf_token": csrf_from(dashboard), "service": "Exchange Online", "reason": "OWA answers 503 for everyone"}
    shown = client.post("/watch/confirm", data=form)
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200, page
    assert "Confirm an outage of Exchange Online?" in page
    assert "opens the incident <b>Exchange Online outage</b>" in page
    assert "Outlook/Exchange email is failing" in page  # the exchange-outage SMS, rendered
    assert "sms: 3" in page and "email: 7" in page and 'id="cost"' in page and "1 skipped" in page
    assert count(runtime, Incident) == 0 and count(runtime, Delivery) == 0  # nothing happened yet

    stale = client.post("/watch/confirm", data={**form, "confirm": "yes", "fingerprint": "0" * 32})
    assert stale.status_code == 409 and b"changed since your preview" in stale.data
    assert count(runtime, Incident) == 0 and count(runtime, Delivery) == 0

    done = client.post("/watch/confirm", data={**form, "confirm": "yes", "fingerprint": fingerprint_from(page)})
    assert done.status_code == 302 and done.headers["Location"] == "/incidents/1"
    assert count(runtime, Delivery) == 3 + 8 + 1  # as previewed: 3 SMS, 7 emails (+ erin skipped), the notice


def test_approvers_are_paged_by_sms_and_the_header_shows_what_waits(
    app: Flask, client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator", username="olga")
    pat, root, vic = app.test_client(), app.test_client(), app.test_client()
    AuthActions(pat, runtime).login("operator", username="pat")
    AuthActions(root, runtime).login("admin", username="root")
    AuthActions(vic, runtime).login("viewer", username="vic")
    with runtime.database.transaction() as session:
        # An operator's phone lives in contacts.yaml: the account is linked to a person.
        for username, person in (("olga", "alice"), ("pat", "bob"), ("root", "heidi"), ("vic", "carol")):
            users.set_contact(session, username=username, contact_id=person, actor="test")
    assert confirm(client, runbook="m365-suite-outage").status_code == 302
    assert "1 awaiting approval" in pat.get("/incidents").get_data(as_text=True)  # on every page's header

    runtime.delivery.follow_up()  # beat's sweep pages the approvers
    runtime.delivery.follow_up()  # once
    sent_all(runtime)
    with runtime.database.reading() as session:
        pages = session.execute(select(Delivery.person_id, Delivery.step, Delivery.status)).all()
        texts = session.scalars(select(OutboxMessage.body)).all()
    # pat (bob) and root (heidi); not olga, who asked, nor vic, a viewer.
    assert sorted(pages) == [("bob", "approval.0", "sent"), ("heidi", "approval.0", "sent")]
    assert all("waits for your approval (asked by olga)" in text and "/activations/1" in text for text in texts)
    assert client.get("/activations/1.json").get_json()["total"] == 0  # pages are not the broadcast itself
    page = pat.get("/activations/1").get_data(as_text=True)
    assert "Approvers paged by SMS: Bob Example (in the outbox: not sent), Heidi Example" in page

    fingerprint = runtime.activations.approval_preview(activation_id=1).fingerprint
    assert pat.post("/activations/1/approve", data={"csrf_token": csrf_from(page), "fingerprint": fingerprint})
    assert "awaiting approval" not in pat.get("/incidents").get_data(as_text=True)


def test_an_approval_whose_texts_changed_is_shown_again_not_sent(
    app: Flask, client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator", username="olga")
    confirm(client, runbook="m365-suite-outage")
    second = app.test_client()
    AuthActions(second, runtime).login("operator", username="pat")
    page = second.get("/activations/1").get_data(as_text=True)
    answer = second.post("/activations/1/approve", data={"csrf_token": csrf_from(page), "fingerprint": "0" * 32})
    assert answer.status_code == 303 and count(runtime, Delivery) == 0
    assert "changed since you read it" in second.get(answer.headers["Location"]).get_data(as_text=True)


def test_the_cli_asks_before_it_sends_and_refuses_without_a_terminal(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    assert cli.invoke(main, ["init"]).exit_code == 0
    database = Path(env["FAILOVER_DATA_DIR"]) / "failover.db"
    import sqlite3

    def rows() -> int:
        return int(sqlite3.connect(database).execute("select count(*) from deliveries").fetchone()[0])

    refused = cli.invoke(main, ["activate", "exchange-outage", "--reason", "451 4.3.2"])
    assert refused.exit_code == 1 and "Pass --yes to send from a script" in refused.output
    assert "Step 1 · SMS to oncall" in refused.output and rows() == 0  # shown, not sent

    monkeypatch.setattr("failover.cli._interactive", lambda: True)  # a person at a terminal answers
    declined = cli.invoke(main, ["activate", "exchange-outage", "--reason", "451 4.3.2"], input="n\n")
    assert declined.exit_code == 1 and "Send these messages now? [y/N]" in declined.output
    assert "nothing sent" in declined.output and rows() == 0
    accepted = cli.invoke(main, ["activate", "exchange-outage", "--reason", "451 4.3.2"], input="y\n")
    assert accepted.exit_code == 0 and "activation 1 (queued)" in accepted.output and rows() == 12

    kept = cli.invoke(main, ["resolve", "1"], input="n\n")
    assert kept.exit_code == 1 and "All-clear 1 · SMS to oncall" in kept.output and "nothing sent" in kept.output
    resolved = cli.invoke(main, ["resolve", "1"], input="y\n")
    assert resolved.exit_code == 0 and "incident 1 resolved" in resolved.output


def test_console_api_and_cli_preview_through_one_path(
    app: Flask, client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    assert not hasattr(activation_use_cases, "preview")  # the second, copied preview is gone
    auth.login("operator")
    console = fingerprint_from(preview(client, reason="same request")[0].get_data(as_text=True))
    with runtime.database.transaction() as session:
        _, secret = tokens.create(session, name="automation", role="operator", days=1, actor="test", owner="operator")
    api = app.test_client().post(
        "/api/v1/activations",
        json={"runbooks": ["exchange-outage"], "reason": "same request", "dry_run": True},
        headers={"Authorization": f"Bearer {secret}"},
    )
    out = CliRunner().invoke(main, ["activate", "exchange-outage", "--reason", "same request", "--dry-run"])
    cli = re.search(r"\(preview ([0-9a-f]+)\)", out.output)
    assert cli is not None, out.output
    assert console == api.get_json()["fingerprint"] == cli.group(1)


# -- item 6: honesty about what goes out ----------------------------------------------------------------------


def test_the_internal_note_is_never_sent_and_the_message_is(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    auth.login("operator")
    form = client.get("/activate").get_data(as_text=True)
    assert "Internal note (audit log only, never sent)" in form
    assert "Message to recipients (optional, shown in the emails as a note from IT)" in form
    fields = {"reason": "ticket INC-4711, Olga on the bridge", "message": "Use your personal phone for calls."}
    shown = preview(client, **fields)[0].get_data(as_text=True)
    assert "Note from IT: Use your personal phone for calls." in shown
    assert shown.count("INC-4711") == 2  # the note as the preview labels it, and its hidden field: in no text
    assert confirm(client, **fields).status_code == 302
    sent_all(runtime)
    with runtime.database.reading() as session:
        bodies = session.scalars(select(OutboxMessage.body)).all()
        emails = session.scalars(select(OutboxMessage.body).where(OutboxMessage.channel == "email")).all()
    assert bodies and not any("INC-4711" in body for body in bodies)
    assert len(emails) == 7 and all("Note from IT: Use your personal phone for calls." in body for body in emails)
    audit = client.get("/audit?action=activation.queued").get_data(as_text=True)
    assert "INC-4711" in audit  # where the note belongs


def test_the_preview_names_each_transport_and_warns_when_only_the_outbox_gets_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login("operator")
    page = preview(client)[0].get_data(as_text=True)
    assert 'class="flash error" role="alert" id="outbox-warning"' in page
    assert "Nobody would receive the SMS and email messages" in page
    assert page.count("via the outbox only: NOT sent to anyone") == 2 and "on the public status page" in page

    for name, value in {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM": "+12025550100",
        "SENDGRID_API_KEY": "SG.key",
        "SENDGRID_FROM": "alerts@failover.example",
    }.items():
        monkeypatch.setenv(name, value)
    configured = Runtime(load_settings())
    try:
        other = create_app(runtime=configured, test_config={"TESTING": True}).test_client()
        AuthActions(other, configured).login("operator", username="otto")
        page = preview(other)[0].get_data(as_text=True)
    finally:
        configured.close()
    assert "outbox-warning" not in page and "via Twilio" in page and "via SendGrid" in page


def test_a_drill_says_drill_once(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    auth.login("operator")
    page = preview(client, drill="y")[0].get_data(as_text=True)
    assert "[DRILL] [DRILL]" not in page and "[DRILL] Email is down" in page
    assert confirm(client, drill="y").status_code == 302
    sent_all(runtime)
    with runtime.database.reading() as session:
        texts = session.execute(select(OutboxMessage.subject, OutboxMessage.body)).all()
        title = session.scalar(select(Incident.title))
    assert texts and title is not None and "[DRILL]" not in title  # the incident is flagged a drill instead
    for subject, body in texts:
        assert body.count("[DRILL]") == 1 and body.startswith("[DRILL] "), body
        assert subject is None or subject.count("[DRILL]") == 1


def test_the_readme_never_shows_a_real_send_as_a_drill() -> None:
    """`--reason drill` once sat under a command that really sent: every example that sends says so honestly."""
    commands = [line for line in (REPO / "README.md").read_text().splitlines() if "failover activate " in line]
    assert commands
    for line in commands:
        command = line.split("#")[0]
        if "--dry-run" in command:
            continue
        assert "--drill" in command or "drill" not in command.split("--reason")[-1], line
