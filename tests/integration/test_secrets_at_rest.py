"""Credentials never reach a log line at any level; data files are the service user's alone (issue 11, item 8)."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from failover import logs
from failover.channels.base import OutgoingMessage
from failover.channels.sendgrid_email import SendGridEmail
from failover.channels.twilio_sms import TwilioSMS
from failover.db import migrate
from failover.engine import audit
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio

# Shaped like the real thing, so a pattern that only knows "SG." keys could not pass by luck either way.
SENDGRID_KEY = "SG.q1w2e3r4t5y6u7i8o9p0aS.Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0DdSsAaQqWwEeRrTtYy"
TWILIO_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """logs.configure() replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("twilio", "urllib3", "python_http_client")}
    printer, debuglevel = getattr(http.client, "print", print), http.client.HTTPConnection.debuglevel
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    http.client.print = printer  # type: ignore[attr-defined]
    http.client.HTTPConnection.debuglevel = debuglevel


def test_debug_logs_never_carry_credentials(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG")  # FAILOVER_LOG_LEVEL=DEBUG, as the review ran the worker
    http.client.HTTPConnection.debuglevel = 1  # and the wire-level dump requests users turn on
    with FakeSendGrid(api_key=SENDGRID_KEY) as sendgrid, FakeTwilio(auth_token=TWILIO_TOKEN) as twilio:
        email = SendGridEmail(api_key=SENDGRID_KEY, sender="alerts@failover.example", api_base=sendgrid.url)
        email.send([OutgoingMessage(1, "alice@personal.example", "Email is down", "Outage")])
        sms = TwilioSMS(
            account_sid=twilio.account_sid,
            auth_token=TWILIO_TOKEN,
            sender="+12025550100",
            messaging_service_sid=None,
            api_base=twilio.url,
            public_url="https://failover.example",
        )
        sms.send([OutgoingMessage(2, "+12025550101", "Email is down")])
        basic = base64.b64encode(f"{twilio.account_sid}:{TWILIO_TOKEN}".encode()).decode()
        logging.getLogger("failover.test").debug("connecting to redis://:%s@cache:6379/0", TWILIO_TOKEN)
    output = capsys.readouterr().err
    assert "HEADERS:" in output and "send: b'POST" in output  # the debug output the review saw is there...
    for secret in (SENDGRID_KEY, TWILIO_TOKEN, basic, "alice@personal.example", "+12025550101"):
        assert secret not in output  # ...without a single credential or contact in it
    assert "Bearer **********" in output and "Basic **********" in output


def test_data_files_are_created_private(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FAILOVER_DATABASE_URL", "FAILOVER_SECRET_KEY", "FAILOVER_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)  # the embedded defaults: everything in the data dir
    previous = os.umask(0o022)  # what most shells set: files 0644 unless created otherwise
    try:
        runtime = Runtime(load_settings())
        try:
            migrate(runtime.database)
            with runtime.database.transaction() as session:
                audit.record(session, action="test.event", actor="tester")
                session.execute(text("SELECT 1"))
            from failover.web import create_app

            create_app(runtime=runtime)  # the session-signing key
            runtime.audit.checkpoint()
            data = Path(env["FAILOVER_DATA_DIR"])
            files = ["failover.db", "failover.db-wal", "failover.db-shm", "broker.db", "secret_key", "audit_key"]
            modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in files}
            modes["audit/audit-checkpoints.jsonl"] = stat.S_IMODE(
                (data / "audit" / "audit-checkpoints.jsonl").stat().st_mode
            )
        finally:
            runtime.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and stat.S_IMODE((data / "audit").stat().st_mode) == 0o700
    assert modes == dict.fromkeys(modes, 0o600)


def test_an_existing_database_file_is_narrowed(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "old.db"
    database.write_bytes(b"")
    database.chmod(0o644)  # created by an older version
    monkeypatch.setenv("FAILOVER_DATABASE_URL", f"sqlite:///{database}")
    Runtime(load_settings()).close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
