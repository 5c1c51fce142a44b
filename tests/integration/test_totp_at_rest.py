"""TOTP secrets at rest (issue 11, item 8 in part): sealed with Fernet, readable after upgrades and key changes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select, update

from failover.cli import main
from failover.models import User
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from tests.conftest import PASSWORD, SQLITE_ONLY, AuthActions, add_user, csrf_from
from tests.integration.test_auth import events, post_login

START = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
KEY_A = "N1xRqqSa8ElPn2U3WWbqOhctxdKSRg8YISuOXlpmSj4="  # Fernet.generate_key(), for tests only
KEY_B = "cuamVSrEwHeKklt_aKTZOpM8aiPvhne7-aNKoII9RmE="


def stored_secret(runtime: Runtime, username: str = "olga") -> str:
    with runtime.database.reading() as session:
        return str(session.scalar(select(User.totp_secret).where(User.username == username)))


def log_in_with_code(app: Flask, secret: str, at: dt.datetime) -> FlaskClient:
    client = app.test_client()
    assert post_login(client, "olga", PASSWORD).headers["Location"].startswith("/login/totp")
    form = client.get("/login/totp").get_data(as_text=True)
    return_code = client.post("/login/totp", data={"csrf_token": csrf_from(form), "code": pyotp.TOTP(secret).at(at)})
    assert return_code.status_code in (302, 401)
    return client


@pytest.fixture
def app_with(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Flask]]:
    """Web apps on the same database, each with its own FAILOVER_TOTP_KEY (as after a restart)."""
    made: list[Runtime] = []

    def make(key: str) -> Flask:
        monkeypatch.setenv("FAILOVER_TOTP_KEY", key)
        made.append(Runtime(load_settings()))
        return create_app(runtime=made[-1], test_config={"TESTING": True})

    yield make
    for each in made:
        each.close()


def test_secrets_are_stored_sealed_and_codes_still_work(app: Flask, client: FlaskClient, runtime: Runtime) -> None:
    with freeze_time(START) as clock:
        auth = AuthActions(client, runtime)
        auth.login("operator", username="olga")
        page = client.get("/account/totp").get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)  # type: ignore[union-attr]
        data = {"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).at(START)}
        assert client.post("/account/totp", data=data).status_code == 302
        assert secret not in client.get_cookie("failover_session").value  # type: ignore[union-attr]
        auth.logout()
        stored = stored_secret(runtime)
        assert secret not in stored and stored.startswith("gAAAAA")  # a Fernet token, not the base32 secret
        clock.tick(dt.timedelta(seconds=30))
        assert log_in_with_code(app, secret, START + dt.timedelta(seconds=30)).get("/").status_code == 200


def test_clear_secrets_from_before_work_and_init_seals_them(app: Flask, runtime: Runtime) -> None:
    add_user(runtime, "olga", "operator")
    secret = pyotp.random_base32()
    with runtime.database.transaction() as session:
        session.execute(update(User).where(User.username == "olga").values(totp_secret=secret))
    with freeze_time(START) as clock:
        assert log_in_with_code(app, secret, START).get("/").status_code == 200
        result = CliRunner().invoke(main, ["init"])
        assert result.exit_code == 0, result.output
        assert "sealed 1 TOTP secret" in result.output
        assert stored_secret(runtime).startswith("gAAAAA")
        clock.tick(dt.timedelta(seconds=30))
        assert log_in_with_code(app, secret, START + dt.timedelta(seconds=30)).get("/").status_code == 200


@SQLITE_ONLY
def test_the_key_can_be_rotated_and_a_wrong_key_is_a_refusal_not_an_error(
    runtime: Runtime, app_with: Callable[[str], Flask]
) -> None:
    with freeze_time(START) as clock:
        first = app_with(KEY_A)
        client = first.test_client()
        AuthActions(client, runtime).login("operator", username="olga")
        page = client.get("/account/totp").get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)  # type: ignore[union-attr]
        client.post("/account/totp", data={"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).at(START)})
        under_a = stored_secret(runtime)

        clock.tick(dt.timedelta(seconds=30))
        rotated = app_with(f"{KEY_B},{KEY_A}")  # new key first, the old one still read
        assert log_in_with_code(rotated, secret, START + dt.timedelta(seconds=30)).get("/").status_code == 200
        assert "resealed 1 TOTP secret" in CliRunner().invoke(main, ["init"]).output
        assert stored_secret(runtime) != under_a

        clock.tick(dt.timedelta(seconds=30))
        only_b = app_with(KEY_B)
        assert log_in_with_code(only_b, secret, START + dt.timedelta(seconds=60)).get("/").status_code == 200

        clock.tick(dt.timedelta(seconds=30))
        wrong = app_with(KEY_A)
        refused = log_in_with_code(wrong, secret, START + dt.timedelta(seconds=90))
        assert refused.get("/").status_code == 302
    assert events(runtime)[-1][2]["reason"] == "TOTP secret unreadable: FAILOVER_TOTP_KEY does not open it"


def test_a_malformed_key_stops_start_up(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from failover.errors import ConfigError

    monkeypatch.setenv("FAILOVER_TOTP_KEY", "not-a-fernet-key")
    with pytest.raises(ConfigError, match="FAILOVER_TOTP_KEY"):
        load_settings()
