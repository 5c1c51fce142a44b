"""Settings fail loudly naming the variable; secrets and contact data never leak into output."""

from __future__ import annotations

import logging

import pytest

from failover.errors import ConfigError
from failover.privacy import ScrubbingFilter, mask_email, mask_phone, scrub
from failover.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(env: dict[str, str]) -> None:
    """Use the test environment (no provider variables)."""


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FAILOVER_PORT", "eighty", "FAILOVER_PORT: Input should be a valid integer"),
        ("FAILOVER_PORT", "70000", "FAILOVER_PORT: Input should be less than or equal to 65535"),
        ("FAILOVER_PUBLIC_URL", "failover.example", "FAILOVER_PUBLIC_URL: must start with http:// or https://"),
        ("FAILOVER_TWILIO_API_BASE", "ftp://x", "FAILOVER_TWILIO_API_BASE: must start with http:// or https://"),
        ("FAILOVER_MAX_ATTEMPTS", "0", "FAILOVER_MAX_ATTEMPTS: Input should be greater than or equal to 1"),
        ("FAILOVER_LOGIN_RATE_LIMIT", "lots", "FAILOVER_LOGIN_RATE_LIMIT: 'lots' is not a rate limit"),
        ("FAILOVER_SESSION_TIMEOUT", "5", "FAILOVER_SESSION_TIMEOUT: Input should be greater than or equal to 60"),
        ("FAILOVER_SMS_SEGMENT_PRICE", "-1", "FAILOVER_SMS_SEGMENT_PRICE: Input should be greater than or equal to 0"),
        ("FAILOVER_EMAIL_PRICE", "cheap", "FAILOVER_EMAIL_PRICE: Input should be a valid decimal"),
        ("FAILOVER_PRICE_CURRENCY", "dollars", "FAILOVER_PRICE_CURRENCY: String should match pattern"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_a_half_configured_provider_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    with pytest.raises(ConfigError, match="Twilio is partly configured: set TWILIO_AUTH_TOKEN too"):
        load_settings()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    with pytest.raises(ConfigError, match="TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required"):
        load_settings()
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("TWILIO_FROM", "+12025550100")
    with pytest.raises(ConfigError, match="SENDGRID_FROM is required"):
        load_settings()


def test_secrets_never_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "super-secret-token")
    monkeypatch.setenv("TWILIO_FROM", "+12025550100")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.very-secret")
    monkeypatch.setenv("SENDGRID_FROM", "a@b.example")
    settings = load_settings()
    text = repr(settings) + str(settings)
    assert "super-secret-token" not in text and "SG.very-secret" not in text
    assert "**********" in text
    assert settings.twilio_enabled and settings.sendgrid_enabled


def test_a_bad_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_GRAPH_TENANT_ID", "t")
    monkeypatch.setenv("FAILOVER_GRAPH_CLIENT_ID", "c")
    monkeypatch.setenv("FAILOVER_GRAPH_CLIENT_SECRET", "graph-secret-value")
    monkeypatch.setenv("FAILOVER_GRAPH_AUTHORITY_BASE", "http://login.example")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FAILOVER_GRAPH_AUTHORITY_BASE must start with https://" in str(caught.value)
    assert "graph-secret-value" not in str(caught.value)


def test_defaults_are_the_embedded_mode() -> None:
    settings = load_settings()
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.celery_broker_url.startswith("sqla+sqlite:///")
    assert settings.embedded_broker
    assert not settings.twilio_enabled and not settings.sendgrid_enabled


def test_a_secret_key_is_generated_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAILOVER_SECRET_KEY")
    first = load_settings().flask_secret_key()
    assert len(first) == 64
    assert load_settings().flask_secret_key() == first


def test_masking() -> None:
    assert mask_phone("+12025550101") == "+1********01"
    assert mask_email("alice@personal.example") == "a***@personal.example"
    text = scrub("The 'To' number +12025550101 is not valid; bounce from bob@home.example")
    assert "+12025550101" not in text and "bob@home.example" not in text
    assert "+1********01" in text and "b***@home.example" in text
    assert scrub("task succeeded in 0.012345678s") == "task succeeded in 0.012345678s"


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("failover.test")
    handler = logging.Handler()
    records: list[logging.LogRecord] = []
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(ScrubbingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("sending to %s at %s", "+12025550101", "carol@personal.example")
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == "sending to +1********01 at c***@personal.example"
