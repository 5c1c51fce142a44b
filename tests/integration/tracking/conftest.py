"""A wired service for delivery-tracking tests: real SDKs against the fakes, callbacks through the Flask app.

``tracked`` runs on SQLite and PostgreSQL (``database_url``). Twilio and
SendGrid are the fakes; their callbacks are signed as the providers sign them
and reach the app through its test client, addressed to the public URL the
signatures cover.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.db import migrate
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import AuthActions, provider_env
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw
from tests.integration.tracking.support import PUBLIC_URL, Tracked, tracking_config


@pytest.fixture
def tracked(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    fake_twilio: tw.FakeTwilio,
    fake_sendgrid: sg.FakeSendGrid,
) -> Iterator[Tracked]:
    from failover.web import create_app

    config, books = tracking_config(tmp_path)
    values = {
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_DATABASE_URL": database_url,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_PUBLIC_URL": PUBLIC_URL,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake_sendgrid.public_key,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    app = create_app(runtime=runtime, test_config={"TESTING": True})
    client = app.test_client()
    AuthActions(client, runtime).login("viewer")  # the console pages need a signed-in user
    fake_twilio.poster = tw.flask_poster(client)
    fake_sendgrid.poster = sg.flask_poster(client)
    wired = Tracked(runtime, client, fake_twilio, fake_sendgrid)
    runtime.relay.publisher = lambda batch_id, countdown: wired.published.append(batch_id)
    yield wired
    runtime.close()
