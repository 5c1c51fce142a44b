"""Break-glass login: local accounts, TOTP, throttling, sessions that end when they should, all audited."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from failover.engine import audit
from failover.models import AuditEvent
from failover.runtime import Runtime
from failover.web import create_app
from tests.conftest import PASSWORD, AuthActions, add_user, csrf_from


def events(runtime: Runtime, prefix: str = "auth.") -> list[tuple[str, str, dict[str, object]]]:
    with runtime.database.reading() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id))
        return [(e.action, e.actor, e.details) for e in rows]


def post_login(client: FlaskClient, username: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password, **extra})


def test_login_and_logout_are_audited_and_the_session_cookie_is_locked_down(
    client: FlaskClient, runtime: Runtime, auth: AuthActions
) -> None:
    assert client.get("/").status_code == 302  # anonymous: to the login page
    response = auth.login("operator", username="olga")
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    page = client.get("/")
    assert page.status_code == 200 and b"olga" in page.data
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    auth.logout()
    assert client.get("/").status_code == 302
    assert [(a, who) for a, who, _ in events(runtime)] == [("auth.login", "olga"), ("auth.logout", "olga")]
    assert events(runtime)[0][2] == {"ip": "127.0.0.1", "totp": False, "role": "operator"}
    with runtime.database.reading() as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("username", "password", "reason", "actor"),
    [
        ("olga", "wrong password here", "wrong password", "olga"),
        ("nobody", PASSWORD, "unknown user", "anonymous"),
    ],
)
def test_failed_logins_are_refused_with_one_message_and_audited(
    client: FlaskClient, runtime: Runtime, username: str, password: str, reason: str, actor: str
) -> None:
    add_user(runtime, "olga", "operator")
    response = post_login(client, username, password)
    assert response.status_code == 401 and b"Wrong username or password." in response.data
    assert events(runtime) == [("auth.login_failed", actor, {"ip": "127.0.0.1", "reason": reason})]
    assert "nobody" not in str(events(runtime))  # an unknown name is not recorded: it may be a password


def test_a_disabled_account_cannot_log_in_and_its_sessions_end(
    client: FlaskClient, app: Flask, runtime: Runtime, auth: AuthActions
) -> None:
    from failover.engine import users

    auth.login("operator", username="olga")
    add_user(runtime, "root", "admin")
    with runtime.database.transaction() as session:
        users.set_disabled(session, username="olga", disabled=True, actor="root")
    assert client.get("/").status_code == 302  # the open session is gone at once
    assert post_login(client, "olga", PASSWORD).status_code == 401
    assert events(runtime)[-1][2]["reason"] == "account disabled"


def test_repeated_failures_are_throttled_even_for_the_right_password(client: FlaskClient, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    add_user(runtime, "pat", "operator")
    for _ in range(5):
        assert post_login(client, "olga", "not the password").status_code == 401
    throttled = post_login(client, "olga", PASSWORD)
    assert throttled.status_code == 429 and b"Too many failed attempts" in throttled.data
    assert post_login(client, "pat", PASSWORD).status_code == 302  # other accounts are not locked out
    failures = [e for e in events(runtime) if e[0] == "auth.login_failed"]
    assert len(failures) == 5  # the throttled attempt never reached the password check


def test_successful_logins_do_not_count_towards_the_throttle(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    for _ in range(7):
        assert post_login(app.test_client(), "olga", PASSWORD).status_code == 302


def totp_code(secret: str, at: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def test_totp_enrolment_then_login_needs_a_fresh_code(client: FlaskClient, runtime: Runtime, auth: AuthActions) -> None:
    start = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        auth.login("operator", username="olga")
        page = client.get("/account/totp").get_data(as_text=True)
        assert "<svg" in page  # the QR code, inline, no image library needed
        secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)  # type: ignore[union-attr]
        wrong = client.post("/account/totp", data={"csrf_token": csrf_from(page), "code": "000000"})
        assert wrong.status_code == 400 and b"does not match" in wrong.data
        enrolled = client.post("/account/totp", data={"csrf_token": csrf_from(page), "code": totp_code(secret, start)})
        assert enrolled.status_code == 302
        assert b'id="totp-state">on<' in client.get("/account").data
        auth.logout()

        clock.tick(dt.timedelta(seconds=30))
        step_one = post_login(client, "olga", PASSWORD)
        assert step_one.status_code == 302 and step_one.headers["Location"].startswith("/login/totp")
        assert client.get("/").status_code == 302  # the password alone is not a login
        form = client.get("/login/totp").get_data(as_text=True)
        bad = client.post("/login/totp", data={"csrf_token": csrf_from(form), "code": "123456"})
        assert bad.status_code == 401
        now = start + dt.timedelta(seconds=30)
        good = client.post("/login/totp", data={"csrf_token": csrf_from(form), "code": totp_code(secret, now)})
        assert good.status_code == 302 and good.headers["Location"] == "/"
        assert client.get("/").status_code == 200
        auth.logout()

        # The same code again (shoulder-surfed, replayed) is refused.
        post_login(client, "olga", PASSWORD)
        form = client.get("/login/totp").get_data(as_text=True)
        replay = client.post("/login/totp", data={"csrf_token": csrf_from(form), "code": totp_code(secret, now)})
        assert replay.status_code == 401
    actions = [(a, d.get("reason"), d.get("totp")) for a, _, d in events(runtime)]
    assert actions == [
        ("auth.login", None, False),
        ("auth.logout", None, None),
        ("auth.login_failed", "wrong or reused TOTP code", None),
        ("auth.login", None, True),
        ("auth.logout", None, None),
        ("auth.login_failed", "wrong or reused TOTP code", None),
    ]
    assert [a for a, _, _ in events(runtime, "user.totp")] == ["user.totp_enabled"]


def test_a_password_change_ends_the_other_sessions(app: Flask, runtime: Runtime, auth: AuthActions) -> None:
    other = app.test_client()
    auth.login("operator", username="olga")
    token = csrf_from(other.get("/login").get_data(as_text=True))
    assert other.post("/login", data={"csrf_token": token, "username": "olga", "password": PASSWORD}).status_code == 302
    page = auth.client.get("/account").get_data(as_text=True)
    new = "another long passphrase"
    changed = auth.client.post(
        "/account/password",
        data={"csrf_token": csrf_from(page), "current": PASSWORD, "new": new, "repeat": new},
    )
    assert changed.status_code == 302
    assert auth.client.get("/").status_code == 200  # this session carries on
    assert other.get("/").status_code == 302  # the other one is logged out
    assert post_login(other, "olga", new).status_code == 302


def test_sessions_expire_after_the_absolute_limit(client: FlaskClient, auth: AuthActions, runtime: Runtime) -> None:
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        auth.login("viewer")
        assert client.get("/").status_code == 200
        clock.tick(dt.timedelta(seconds=runtime.settings.session_max_age + 1))
        assert client.get("/").status_code == 302


def test_sessions_expire_when_idle(runtime: Runtime) -> None:
    app = create_app(runtime=runtime, test_config={"TESTING": True})
    app.permanent_session_lifetime = dt.timedelta(seconds=1)
    client = app.test_client()
    AuthActions(client, runtime).login("viewer")
    assert client.get("/").status_code == 200
    import time

    time.sleep(2.1)  # the signed cookie's own timestamp: nothing in the server to fake
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"])
def test_login_never_redirects_off_site(client: FlaskClient, runtime: Runtime, target: str) -> None:
    add_user(runtime, "olga", "operator")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        f"/login?next={target}", data={"csrf_token": token, "username": "olga", "password": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_login_returns_to_the_page_asked_for(client: FlaskClient, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    first = client.get("/audit?actor=olga")
    assert first.status_code == 302 and first.headers["Location"] == "/login?next=/audit?actor%3Dolga"
    token = csrf_from(client.get(first.headers["Location"]).get_data(as_text=True))
    response = client.post(
        first.headers["Location"], data={"csrf_token": token, "username": "olga", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/audit?actor=olga"


def test_csrf_is_required_on_login_and_logout(client: FlaskClient, auth: AuthActions) -> None:
    response = client.post("/login", data={"username": "x", "password": "y"})
    assert response.status_code == 400 and b"CSRF token is missing" in response.data
    auth.login("viewer")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_cookies_are_secure_when_served_over_https(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from failover.settings import load_settings

    monkeypatch.setenv("FAILOVER_PUBLIC_URL", "https://failover.example.org")
    app = create_app(load_settings(), runtime=runtime, test_config={"TESTING": True})
    client = app.test_client()
    response = client.get("/login", base_url="https://failover.example.org")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-failover=") and "Secure" in cookie and "HttpOnly" in cookie


def test_the_throttle_is_shared_by_web_processes_through_redis(
    runtime: Runtime, redis_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from failover.settings import load_settings

    monkeypatch.setenv("FAILOVER_REDIS_URL", redis_server.url)  # type: ignore[attr-defined]
    settings = load_settings()
    first, second = (create_app(settings, runtime=runtime, test_config={"TESTING": True}) for _ in range(2))
    name = f"u{uuid.uuid4().hex[:8]}"  # the Redis server outlives this test
    add_user(runtime, name, "operator")
    for _ in range(5):
        assert post_login(first.test_client(), name, "not the password").status_code == 401
    assert post_login(second.test_client(), name, PASSWORD).status_code == 429
