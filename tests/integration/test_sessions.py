"""Server-side sessions (issue 11, item 3): a cookie is only as good as its row in the database.

Logout, password changes, disabling, role changes and second-factor changes
end sessions at once, on SQLite (the embedded mode, no Redis) and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from failover.engine import users
from failover.runtime import Runtime
from tests.conftest import PASSWORD, SQLITE_ONLY, AuthActions, add_user, csrf_from
from tests.integration.test_auth import events, post_login

COOKIE = "failover_session"
START = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)


def replay(client: FlaskClient, value: str) -> int:
    """Put a saved cookie back and ask for the dashboard."""
    client.set_cookie(COOKIE, value)
    return client.get("/").status_code


def test_a_cookie_saved_before_logout_no_longer_works(client: FlaskClient, auth: AuthActions, runtime: Runtime) -> None:
    auth.login("operator", username="olga")
    saved = client.get_cookie(COOKIE)
    assert saved is not None and client.get("/").status_code == 200
    auth.logout()
    assert replay(client, saved.value) == 302  # before the fix: 200 for up to 12 hours
    ended = [d for a, _, d in events(runtime) if a == "auth.logout"]
    assert ended == [{"ip": "127.0.0.1"}]
    from failover.models import ConsoleSession

    with runtime.database.reading() as session:
        assert session.scalars(select(ConsoleSession)).all() == []


def other_session(app: Flask, username: str) -> FlaskClient:
    other = app.test_client()
    assert post_login(other, username, PASSWORD).status_code == 302
    assert other.get("/").status_code == 200
    return other


@SQLITE_ONLY
def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login("operator", username="olga")
    other = other_session(app, "olga")
    stolen = other.get_cookie(COOKIE)
    assert stolen is not None
    page = client.get("/account").get_data(as_text=True)
    new = "another long passphrase"
    data = {"csrf_token": csrf_from(page), "current": PASSWORD, "new": new, "repeat": new}
    assert client.post("/account/password", data=data).status_code == 302
    assert client.get("/").status_code == 200
    assert replay(app.test_client(), stolen.value) == 302


CHANGES = {
    "role": lambda s: users.set_role(s, username="olga", role="viewer", actor="root"),
    "second factor reset": lambda s: users.reset_totp(s, username="olga", actor="root"),
    "password set by an admin": lambda s: users.set_password(
        s, username="olga", password="a brand new passphrase", actor="root"
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("change", list(CHANGES))
def test_changes_by_an_admin_end_every_session_of_the_account(app: Flask, runtime: Runtime, change: str) -> None:
    add_user(runtime, "olga", "operator")
    first = other_session(app, "olga")
    with runtime.database.transaction() as session:
        CHANGES[change](session)
    assert first.get("/").status_code == 302
    details = [d for a, _, d in events(runtime, "user.") if a != "user.added"]
    assert details[-1]["sessions_ended"] == 1


@SQLITE_ONLY
def test_disabling_ends_sessions(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    first, second = other_session(app, "olga"), other_session(app, "olga")
    with runtime.database.transaction() as session:
        users.set_disabled(session, username="olga", disabled=True, actor="root")
    assert first.get("/").status_code == 302 and second.get("/").status_code == 302
    assert [d["sessions_ended"] for a, _, d in events(runtime, "user.") if a == "user.disabled"] == [2]


@SQLITE_ONLY
def test_turning_the_second_factor_on_ends_the_other_sessions(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    import re

    import pyotp

    auth.login("operator", username="olga")
    other = other_session(app, "olga")
    page = client.get("/account/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).now()}
    assert client.post("/account/totp", data=data).status_code == 302
    assert client.get("/").status_code == 200 and other.get("/").status_code == 302


def test_last_seen_is_written_at_most_once_a_minute_and_idle_sessions_end(
    client: FlaskClient, auth: AuthActions, runtime: Runtime
) -> None:
    from failover.models import ConsoleSession

    def last_seen() -> dt.datetime:
        with runtime.database.reading() as session:
            return session.scalars(select(ConsoleSession.last_seen_at)).one()

    with freeze_time(START) as clock:
        auth.login("viewer")
        saved = client.get_cookie(COOKIE)
        assert saved is not None
        for _ in range(5):
            clock.tick(dt.timedelta(seconds=10))
            assert client.get("/").status_code == 200
        assert last_seen() == START  # five requests, no write
        clock.tick(dt.timedelta(seconds=15))
        client.get("/")
        assert last_seen() == START + dt.timedelta(seconds=65)
        # Idle past FAILOVER_SESSION_TIMEOUT: the server refuses the session, whatever the cookie says.
        clock.tick(dt.timedelta(seconds=runtime.settings.session_timeout + 1))
        assert replay(client, saved.value) == 302
