"""A wired service for status page tests: real SDKs against the fakes, callbacks through the Flask app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from sqlalchemy import func, select

from failover.db import migrate
from failover.models import Delivery
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import REPO, AuthActions, provider_env
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw

PUBLIC_URL = "https://failover.example"
INBOUND_URL = f"{PUBLIC_URL}/webhooks/twilio/inbound"
STATUS_YAML = {
    "page": {"name": "Contoso status", "help_phone": "+1 202 555 0199", "accent": "#224488"},
    "components": [
        {"name": "Exchange Online", "group": "Microsoft 365"},
        {"name": "Microsoft Teams", "group": "Microsoft 365"},
        {"name": "Microsoft 365 suite"},
        {"name": "VPN", "description": "Remote access"},
    ],
}


@dataclass
class Wired:
    runtime: Runtime
    client: FlaskClient
    twilio: tw.FakeTwilio
    sendgrid: sg.FakeSendGrid
    config: Path
    published: list[int] = field(default_factory=list)

    def drain(self) -> None:
        """Stand in for the worker: send every batch published so far."""
        while self.published:
            self.runtime.delivery.send_batch(self.published.pop(0))

    def tick(self) -> dict[str, Any]:
        result = self.runtime.status.tick()
        self.drain()
        return result

    def count(self, **where: Any) -> int:
        with self.runtime.database.reading() as session:
            query = select(func.count()).select_from(Delivery)
            for name, value in where.items():
                query = query.where(getattr(Delivery, name) == value)
            return int(session.scalar(query) or 0)

    def write_status(self, data: dict[str, Any]) -> None:
        (self.config / "status.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def wired(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    fake_twilio: tw.FakeTwilio,
    fake_sendgrid: sg.FakeSendGrid,
) -> Iterator[Wired]:
    from failover.web import create_app

    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "status.yaml").write_text(yaml.safe_dump(STATUS_YAML, sort_keys=False))
    values = {
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_DATABASE_URL": database_url,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_PUBLIC_URL": PUBLIC_URL,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    app = create_app(runtime=runtime, test_config={"TESTING": True})
    client = app.test_client()
    fake_twilio.poster = tw.flask_poster(client)
    fake_sendgrid.poster = sg.flask_poster(client)
    wired = Wired(runtime, client, fake_twilio, fake_sendgrid, config)
    runtime.relay.publisher = lambda batch_id, countdown: wired.published.append(batch_id)
    yield wired
    runtime.close()


@pytest.fixture
def operator(wired: Wired) -> AuthActions:
    auth = AuthActions(wired.client, wired.runtime)
    auth.login("operator")
    return auth
