"""Fixtures in the flaskr manner: a fresh database per test, app, client, runner.

Databases: ``database_url`` runs a test on SQLite and on a real PostgreSQL
cluster this session starts itself (see tests/services.py).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
import yaml
from click.testing import CliRunner

from failover.db import Database, migrate
from failover.runtime import Runtime
from failover.settings import Settings, load_settings
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.fakes.vonage import FakeVonage
from tests.services import PostgresCluster, RedisServer

REPO = Path(__file__).resolve().parents[1]
PROVIDER_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "SENDGRID_API_KEY",
    "SENDGRID_FROM",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "FAILOVER_TWILIO_API_BASE",
    "VONAGE_API_KEY",
    "VONAGE_API_SECRET",
    "VONAGE_SIGNATURE_SECRET",
    "VONAGE_SIGNATURE_METHOD",
    "VONAGE_FROM",
    "FAILOVER_VONAGE_API_BASE",
    "FAILOVER_SMS_PROVIDERS",
    "FAILOVER_SENDGRID_API_BASE",
    "FAILOVER_DATABASE_URL",
    "FAILOVER_BROKER_URL",
    "FAILOVER_SECRET_KEY",
    "FAILOVER_GRAPH_TENANT_ID",
    "FAILOVER_GRAPH_CLIENT_ID",
    "FAILOVER_GRAPH_CLIENT_SECRET",
    "FAILOVER_SIGNALS_SECRET",
    "FAILOVER_REDIS_URL",
    "FAILOVER_AUDIT_KEY",
    "FAILOVER_AUDIT_CHECKPOINT_DIRS",
    "FAILOVER_AUDIT_CHECKPOINT_EMAIL",
)


# -- servers (once per session) ------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster().init().start()
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PostgresCluster) -> str:
    """A migrated database that each test copies (CREATE DATABASE ... TEMPLATE is fast)."""
    name = "failover_template"
    url = pg_cluster.create_database(name)
    database = Database(url)
    migrate(database)
    database.dispose()
    return name


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


# -- configuration ---------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment: data in tmp_path, the repo's demo config, no providers."""
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    values = {
        "FAILOVER_DATA_DIR": str(tmp_path / "var"),
        "FAILOVER_CONFIG_DIR": str(REPO / "config"),
        "FAILOVER_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FAILOVER_SECRET_KEY": "test-secret-key",
        "FAILOVER_ENV_FILE": "",  # a developer's .env never leaks into a test
        "FAILOVER_AUDIT_KEY": "test-audit-key-0123456789abcdef0123456789abcdef",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'failover.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    template: str = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = cluster.create_database(name, template=template)
    yield url
    cluster.drop_database(name)


# For behaviour that does not depend on the database: run it on SQLite only, to keep the suite quick.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, database_url: str) -> Settings:
    monkeypatch.setenv("FAILOVER_DATABASE_URL", database_url)
    return load_settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    migrate(runtime.database)
    yield runtime
    runtime.close()


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from failover.web import create_app

    return create_app(runtime=runtime, test_config={"TESTING": True})


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# -- console accounts (the flaskr ``auth`` helper) ------------------------------------

PASSWORD = "correct horse battery staple"


def add_user(runtime: Runtime, username: str, role: str, password: str = PASSWORD) -> None:
    from failover.engine import users

    with runtime.database.transaction() as session:
        users.add(session, username=username, password=password, role=role, actor="test")


class AuthActions:
    """Log the test client in through the real login form (creating the account on first use)."""

    def __init__(self, client, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
        self.client, self.runtime = client, runtime
        self.created: set[str] = set()

    def login(self, role: str = "operator", username: str | None = None, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        username = username or role
        if username not in self.created:
            add_user(self.runtime, username, role, password)
            self.created.add(username)
        token = csrf_from(self.client.get("/login").get_data(as_text=True))
        response = self.client.post("/login", data={"csrf_token": token, "username": username, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    def logout(self):  # type: ignore[no-untyped-def]
        token = csrf_from(self.client.get("/account").get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client, runtime: Runtime) -> AuthActions:  # type: ignore[no-untyped-def]
    return AuthActions(client, runtime)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


# -- contacts at scale -------------------------------------------------------------


def make_people(count: int, *, groups: tuple[str, ...] = ("oncall", "all-staff")) -> list[dict[str, object]]:
    """``count`` people with distinct valid numbers and addresses."""
    people: list[dict[str, object]] = []
    area_codes = (202, 212, 213, 303, 312, 404, 415, 503, 617, 702, 713, 801, 919)
    n = 0
    while len(people) < count:
        area, line = area_codes[n // 9000 % len(area_codes)], 1000 + n % 9000
        n += 1
        phone = f"+1{area}555{line:04d}"
        if not phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            continue
        index = len(people)
        people.append(
            {
                "id": f"p{index:05d}",
                "name": f"Person {index}",
                "phone": phone,
                "email": f"p{index:05d}@personal.example",
                "groups": list(groups),
            }
        )
    return people


def write_config(
    directory: Path,
    people: list[dict[str, object]],
    *,
    runbooks_from: Path = REPO / "runbooks",
    groups: dict[str, dict[str, str]] | None = None,
) -> tuple[Path, Path]:
    """A config dir with these people and a copy of the runbooks; returns (config, runbooks)."""
    config = directory / "config"
    runbooks = directory / "runbooks"
    config.mkdir(parents=True, exist_ok=True)
    if not runbooks.exists():
        shutil.copytree(runbooks_from, runbooks)
    default_groups = {name: {"description": name} for name in ("oncall", "it-leads", "service-desk", "all-staff")}
    (config / "contacts.yaml").write_text(
        yaml.safe_dump({"groups": groups or default_groups, "people": people}, sort_keys=False)
    )
    return config, runbooks


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake  # type: ignore[misc]


def vonage_env(fake: FakeVonage) -> dict[str, str]:
    """Settings for the fake Vonage (tests.fakes.vonage.FakeVonage); REQUESTS_CA_BUNDLE must trust its CA."""
    return {
        "VONAGE_API_KEY": fake.api_key,
        "VONAGE_API_SECRET": fake.api_secret,
        "VONAGE_SIGNATURE_SECRET": fake.signature_secret,
        "VONAGE_SIGNATURE_METHOD": fake.signature_method,
        "VONAGE_FROM": "447700900000",
        "FAILOVER_VONAGE_API_BASE": fake.url,
    }


def provider_env(twilio: FakeTwilio, sendgrid: FakeSendGrid) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM": "+12025550100",
        "FAILOVER_TWILIO_API_BASE": twilio.url,
        "SENDGRID_API_KEY": sendgrid.api_key,
        "SENDGRID_FROM": "alerts@failover.example",
        "FAILOVER_SENDGRID_API_BASE": sendgrid.url,
    }
