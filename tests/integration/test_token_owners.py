"""API tokens belong to a person (issue 11, item 9): approvals, disabled owners, roles, tokens from before."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import text

from failover.db import Database, alembic_config
from failover.engine import tokens, users
from failover.errors import InvalidRequest
from failover.runtime import Runtime
from tests.conftest import SQLITE_ONLY, AuthActions, add_user, csrf_from
from tests.integration.test_api import Api

APPROVAL_RUNBOOK = "m365-suite-outage"  # activation: approval


def token_for(app: Flask, runtime: Runtime, owner: str, role: str = "operator", name: str | None = None) -> Api:
    with runtime.database.transaction() as session:
        _, secret = tokens.create(session, name=name or f"{owner}-token", role=role, days=7, actor="root", owner=owner)
    return Api(app.test_client(), secret)


def requested_by(runtime: Runtime, actor: str) -> int:
    accepted, _ = runtime.activations.activate(runbook_id=APPROVAL_RUNBOOK, reason="everything is down", actor=actor)
    assert accepted.state == "pending_approval"
    return accepted.activation_id


def test_an_operator_cannot_approve_their_own_console_request_with_their_token(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    add_user(runtime, "pat", "operator")
    activation = requested_by(runtime, "olga")
    own = token_for(app, runtime, "olga")("POST", f"/activations/{activation}/approve")
    assert own.status_code == 403 and "another operator must approve" in own.get_json()["error"]
    other = token_for(app, runtime, "pat")("POST", f"/activations/{activation}/approve")
    assert other.status_code == 200 and other.get_json()["state"] == "queued"


@SQLITE_ONLY
def test_nor_approve_in_the_console_what_their_token_requested(app: Flask, runtime: Runtime) -> None:
    console = app.test_client()
    AuthActions(console, runtime).login("operator", username="olga")
    created = token_for(app, runtime, "olga")(
        "POST", "/activations", {"runbooks": [APPROVAL_RUNBOOK], "reason": "everything is down"}
    )
    activation = created.get_json()["activations"][0]["activation_id"]
    page = console.get(f"/activations/{activation}").get_data(as_text=True)
    seen = runtime.activations.approval_preview(activation_id=activation).fingerprint  # what an approver would be shown
    refused = console.post(
        f"/activations/{activation}/approve", data={"csrf_token": csrf_from(page), "fingerprint": seen}
    )
    assert refused.status_code == 403 and b"another operator must approve" in refused.data


@SQLITE_ONLY
def test_tokens_of_a_disabled_owner_stop_working(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    api = token_for(app, runtime, "olga")
    assert api("GET", "/incidents").status_code == 200
    with runtime.database.transaction() as session:
        users.set_disabled(session, username="olga", disabled=True, actor="root")
    assert api("GET", "/incidents").status_code == 401
    with runtime.database.transaction() as session:
        users.set_disabled(session, username="olga", disabled=False, actor="root")
    assert api("GET", "/incidents").status_code == 200


@SQLITE_ONLY
def test_a_token_never_does_more_than_its_owner_may(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    with runtime.database.transaction() as session, pytest.raises(InvalidRequest, match="olga is an operator"):
        tokens.create(session, name="too-much", role="admin", days=7, actor="root", owner="olga")
    api = token_for(app, runtime, "olga")
    with runtime.database.transaction() as session:
        users.set_role(session, username="olga", role="viewer", actor="root")
    assert api("GET", "/incidents").status_code == 200
    refused = api("POST", "/notices", {"title": "t", "body": "b"})
    assert refused.status_code == 403 and "you are viewer" in refused.get_json()["error"]


@SQLITE_ONLY
def test_the_console_makes_tokens_for_a_chosen_person(app: Flask, client: Any, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    AuthActions(client, runtime).login("admin", username="root")
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert '<option selected value="root">' in page or '<option value="root" selected>' in page
    created = client.post(
        "/admin/tokens",
        data={"csrf_token": csrf_from(page), "name": "deploy", "role": "operator", "days": "30", "owner": "olga"},
    )
    assert created.status_code == 201
    with runtime.database.reading() as session:
        assert [(t["name"], t["owner"]) for t in tokens.list_tokens(session)] == [("deploy", "olga")]


# -- tokens from before: migration 0009 ----------------------------------------------------------


@pytest.fixture
def old_tokens(database_url: str) -> None:
    """A database at revision 0006 (before tokens had owners) with an admin and two tokens."""
    database = Database(database_url)
    if database_url.startswith("postgresql"):
        with database.engine.begin() as connection:  # the template is already at head: start from nothing
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    with database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0006")
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, password_hash, role, disabled, created_at) "
                "VALUES ('root', 'x', 'admin', false, '2026-01-01 00:00:00')"
            )
        )
        for name, by in (("by-root", "root"), ("by-cli", "cli:ops")):
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, token_hash, prefix, role, created_by, created_at, expires_at)"
                    " VALUES (:name, :hash, 'fo_x', 'operator', :by, '2026-01-01 00:00:00', '2999-01-01')"
                ),
                {"name": name, "hash": tokens.digest(f"fo_{name}"), "by": by},
            )
    database.dispose()


def test_tokens_from_before_belong_to_the_admin_who_made_them_or_can_never_approve(
    old_tokens: None, runtime: Runtime, app: Flask
) -> None:
    """The runtime fixture migrates that database to the head: 0009 gives the tokens their owners."""
    with runtime.database.reading() as session:
        assert {t["name"]: t["owner"] for t in tokens.list_tokens(session)} == {"by-root": "root", "by-cli": None}
    add_user(runtime, "olga", "operator")
    activation = requested_by(runtime, "olga")
    ownerless = Api(app.test_client(), "fo_by-cli")
    assert ownerless("GET", "/incidents").status_code == 200  # still works ...
    refused = ownerless("POST", f"/activations/{activation}/approve")
    assert refused.status_code == 403 and "belongs to nobody" in refused.get_json()["error"]  # ... but never approves
