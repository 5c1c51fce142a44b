"""Login throttling (issue 11, items 1 and 6): one throttle for every way in, keyed on what the server knows.

Failures count per client and account, per client, per account and for
everyone; the second factor also per pending login and per account. Nothing
a client sends (a ``username`` field next to a TOTP code, a JSON body instead
of a form, an X-Forwarded-For header without a trusted proxy) moves it to
another counter. See the docstring of failover/web/auth.py for the rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time

from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from tests.conftest import PASSWORD, AuthActions, add_user, csrf_from
from tests.integration.test_auth import events, post_login, totp_code

START = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
WRONG = "wrong password, guessed"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: throttling does not depend on the database, and these tests log in often."""
    yield f"sqlite:///{tmp_path / 'failover.db'}"


def at(app: Flask, address: str) -> FlaskClient:
    """A client calling from another address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def enrol_totp(client: FlaskClient) -> str:
    """Turn on the second factor for the logged-in account through the console; returns the secret."""
    import re

    page = client.get("/account/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)  # type: ignore[union-attr]
    done = client.post("/account/totp", data={"csrf_token": csrf_from(page), "code": totp_code(secret, START)})
    assert done.status_code == 302
    return secret


def wrong_code(secret: str, now: dt.datetime) -> str:
    """A code that matches no step in the accepted window."""
    valid = {totp_code(secret, now + dt.timedelta(seconds=s)) for s in (-30, 0, 30)}
    return next(c for c in (f"{n:06d}" for n in range(100000, 999999, 7919)) if c not in valid)


def post_totp(client: FlaskClient, code: str, **extra: str):  # type: ignore[no-untyped-def]
    page = client.get("/login/totp")
    token = csrf_from(page.get_data(as_text=True)) if page.status_code == 200 else _any_csrf(client)
    return client.post("/login/totp", data={"csrf_token": token, "code": code, **extra})


def _any_csrf(client: FlaskClient) -> str:
    return csrf_from(client.get("/login").get_data(as_text=True))


def olga_with_totp(app: Flask, runtime: Runtime) -> str:
    client = app.test_client()
    auth = AuthActions(client, runtime)
    auth.login("operator", username="olga")
    secret = enrol_totp(client)
    auth.logout()
    return secret


# -- item 1: the second factor -------------------------------------------------------------


def test_wrong_codes_lock_the_pending_login_whatever_username_the_form_sends(app: Flask, runtime: Runtime) -> None:
    with freeze_time(START) as clock:
        secret = olga_with_totp(app, runtime)
        clock.tick(dt.timedelta(seconds=30))
        now = START + dt.timedelta(seconds=30)
        client = app.test_client()
        assert post_login(client, "olga", PASSWORD).headers["Location"].startswith("/login/totp")
        saved = client.get_cookie("failover_session")
        assert saved is not None
        # Before the fix a different "username" per attempt gave every guess a fresh throttle key.
        answers = [post_totp(client, wrong_code(secret, now), username=f"decoy{n}").status_code for n in range(5)]
        assert answers[:4] == [401] * 4 and answers[4] in (302, 429)
        # The pending login is locked: even the right code needs the password again ...
        assert post_totp(client, totp_code(secret, now)).status_code in (302, 429)
        assert client.get("/").status_code == 302
        # ... and replaying the cookie from before the wrong codes does not bring it back.
        client.set_cookie("failover_session", saved.value)
        assert post_totp(client, totp_code(secret, now)).status_code in (302, 429)
        assert client.get("/").status_code == 302
    locked = [e for e in events(runtime) if e[0] == "auth.totp_locked"]
    assert len(locked) == 1 and locked[0][1] == "olga" and locked[0][2]["failures"] == 5


def test_wrong_codes_count_per_account_across_pending_logins_and_clients(app: Flask, runtime: Runtime) -> None:
    """Someone who has the password cannot guess codes faster by logging in again from many addresses."""
    with freeze_time(START) as clock:
        secret = olga_with_totp(app, runtime)
        clock.tick(dt.timedelta(seconds=30))
        now = START + dt.timedelta(seconds=30)
        answers = []
        for n in range(12):
            client = at(app, f"198.51.100.{n + 1}")
            assert post_login(client, "olga", PASSWORD).status_code == 302
            answers.append(post_totp(client, wrong_code(secret, now)).status_code)
        assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}
        # The second factor of the account is locked for everyone for now, the right code included ...
        fresh = at(app, "198.51.100.200")
        post_login(fresh, "olga", PASSWORD)
        assert post_totp(fresh, totp_code(secret, now)).status_code == 429
        # ... and opens again when the hour has passed.
        clock.tick(dt.timedelta(hours=1, seconds=1))
        later = START + dt.timedelta(hours=1, seconds=31)
        again = at(app, "198.51.100.201")
        assert post_login(again, "olga", PASSWORD).status_code == 302
        assert post_totp(again, totp_code(secret, later)).headers["Location"] == "/"
    locks = [e[2]["scope"] for e in events(runtime) if e[0] == "auth.locked"]
    assert "second factor" in locks


# -- item 6: every way in, per account and per client, plus everyone -------------------------------


def test_a_json_body_login_is_throttled_like_the_form(client: FlaskClient, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    for _ in range(5):
        assert post_login(client, "olga", WRONG).status_code == 401
    token = csrf_from(client.get("/login").get_data(as_text=True))
    as_json = client.post("/login", json={"username": "olga", "password": PASSWORD}, headers={"X-CSRFToken": token})
    assert as_json.status_code == 429  # before the fix: 302, logged in
    assert client.get("/").status_code == 302


def app_with(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, **variables: str) -> Flask:
    """The app with other limits (smaller than the defaults: every failure costs an argon2 verification)."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return create_app(load_settings(), runtime=runtime, test_config={"TESTING": True})


def test_password_spraying_from_one_address_is_limited(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_with(runtime, monkeypatch, FAILOVER_LOGIN_CLIENT_LIMIT="4 per minute")
    add_user(runtime, "olga", "operator")
    client = app.test_client()
    assert [post_login(client, f"user{n}", WRONG).status_code for n in range(4)] == [401] * 4
    assert post_login(client, "olga", PASSWORD).status_code == 429  # this address is done for now
    assert post_login(at(app, "192.0.2.9"), "olga", PASSWORD).status_code == 302
    assert [e[2]["scope"] for e in events(runtime) if e[0] == "auth.locked"] == ["client"]


def test_an_account_under_attack_from_many_addresses_stays_open_to_its_owner(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_with(runtime, monkeypatch, FAILOVER_LOGIN_ACCOUNT_LIMIT="4 per 15 minutes")
    add_user(runtime, "olga", "operator")
    attackers = [at(app, f"203.0.113.{n + 1}") for n in range(4)]
    for attacker in attackers:
        assert post_login(attacker, "olga", WRONG).status_code == 401
    # The account is locked for every address that failed against it, even with the right password ...
    assert post_login(attackers[0], "olga", PASSWORD).status_code == 429
    # ... but a client with a clean record still gets in: nobody can keep an account locked by failing.
    assert post_login(at(app, "192.0.2.1"), "olga", PASSWORD).status_code == 302
    assert [(who, d["scope"]) for a, who, d in events(runtime) if a == "auth.locked"] == [("olga", "account")]


def test_a_global_failure_rate_limits_spraying_across_addresses(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_with(runtime, monkeypatch, FAILOVER_LOGIN_GLOBAL_LIMIT="4 per 15 minutes")
    add_user(runtime, "olga", "operator")
    for n in range(4):
        assert post_login(at(app, f"203.0.113.{n + 1}"), f"user{n}", WRONG).status_code == 401
    # Every address that failed is now refused everywhere; clean ones are still checked.
    assert post_login(at(app, "203.0.113.1"), "olga", PASSWORD).status_code == 429
    assert post_login(at(app, "192.0.2.1"), "olga", PASSWORD).status_code == 302
    assert "everyone" in [e[2]["scope"] for e in events(runtime) if e[0] == "auth.locked"]


def test_the_lock_lapses_by_itself(client: FlaskClient, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    with freeze_time(START) as clock:
        for _ in range(5):
            post_login(client, "olga", WRONG)
        assert post_login(client, "olga", PASSWORD).status_code == 429
        clock.tick(dt.timedelta(minutes=16))
        assert post_login(client, "olga", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("path", "field", "audited_as"),
    [("/account/password", "current", "password change"), ("/account/totp/disable", "password", "second factor off")],
)
def test_wrong_current_passwords_on_account_forms_are_throttled_and_audited(
    client: FlaskClient, runtime: Runtime, auth: AuthActions, path: str, field: str, audited_as: str
) -> None:
    auth.login("operator", username="olga")
    new = "another long passphrase"
    answers = []
    for _ in range(6):
        page = client.get("/account").get_data(as_text=True)
        data = {"csrf_token": csrf_from(page), field: WRONG, "new": new, "repeat": new}
        answers.append(client.post(path, data=data).status_code)
    assert answers == [400] * 5 + [429]
    page = client.get("/account").get_data(as_text=True)
    right = client.post(path, data={"csrf_token": csrf_from(page), field: PASSWORD, "new": new, "repeat": new})
    assert right.status_code == 429  # like a login: the right password waits too
    failures = [e for e in events(runtime) if e[0] == "auth.reauth_failed"]
    assert len(failures) == 5 and failures[0][1] == "olga"
    assert failures[0][2] == {"ip": "127.0.0.1", "form": audited_as}


# -- behind a reverse proxy -------------------------------------------------------------------------


def forwarded(client: FlaskClient, password: str, forwarded_for: str):  # type: ignore[no-untyped-def]
    """A login for olga through a proxy that says it forwards for ``forwarded_for``."""
    data = {"csrf_token": _any_csrf(client), "username": "olga", "password": password}
    return client.post("/login", data=data, headers={"X-Forwarded-For": forwarded_for})


def test_behind_a_trusted_proxy_clients_are_told_apart(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_TRUSTED_PROXIES", "1")
    app = create_app(load_settings(), runtime=runtime, test_config={"TESTING": True})
    add_user(runtime, "olga", "operator")
    proxy = app.test_client()  # every request arrives from the proxy's address, 127.0.0.1
    for _ in range(5):
        assert forwarded(proxy, WRONG, "203.0.113.7").status_code == 401
    assert forwarded(proxy, PASSWORD, "203.0.113.7").status_code == 429
    assert forwarded(app.test_client(), PASSWORD, "198.51.100.23").status_code == 302
    logins = [d for a, _, d in events(runtime) if a in ("auth.login", "auth.login_failed")]
    assert {d["ip"] for d in logins[:-1]} == {"203.0.113.7"} and logins[-1]["ip"] == "198.51.100.23"


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(client: FlaskClient, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    for n in range(5):
        assert forwarded(client, WRONG, f"10.9.9.{n}").status_code == 401
    assert forwarded(client, PASSWORD, "10.9.9.99").status_code == 429
    assert {d["ip"] for a, _, d in events(runtime) if a == "auth.login_failed"} == {"127.0.0.1"}


def test_a_bad_proxy_count_stops_start_up(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from failover.errors import ConfigError

    monkeypatch.setenv("FAILOVER_TRUSTED_PROXIES", "-1")
    with pytest.raises(ConfigError, match="FAILOVER_TRUSTED_PROXIES"):
        load_settings()


def test_the_throttle_counts_in_memory_while_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    from failover.web.login_throttle import Limits, LoginThrottle

    limits = Limits(pair="2 per minute", client="10 per minute", account="10 per minute", everyone="10 per minute")
    throttle = LoginThrottle("redis://127.0.0.1:1/0", limits)  # nothing listens on port 1
    assert throttle.refusal("192.0.2.1", "olga") is None
    assert throttle.failed("192.0.2.1", "olga") == []
    assert throttle.failed("192.0.2.1", "olga") == ["client and account"]
    assert throttle.refusal("192.0.2.1", "olga") == "client and account"  # locked, not open, not an error
    assert "unreachable" in caplog.text and "counting in memory" in caplog.text
