"""The SMS provider policy (failover.domain.providers): order, which errors move a message on, and which do not."""

from __future__ import annotations

import pytest

from failover.domain import providers
from failover.errors import ConfigError


def test_order_is_the_setting_checked_against_the_configured_providers() -> None:
    assert providers.parse_order("vonage, twilio", ["twilio", "vonage"]) == ("vonage", "twilio")
    assert providers.default_order(["vonage", "twilio"]) == ("twilio", "vonage")
    assert providers.default_order([]) == ()


@pytest.mark.parametrize(
    ("text", "available", "message"),
    [
        ("twilio,nexmo", ["twilio"], "unknown provider 'nexmo'"),
        ("twilio,vonage", ["twilio"], "names vonage, but vonage has no credentials set"),
        ("twilio,twilio", ["twilio"], "lists a provider twice"),
        (" , ", ["twilio"], "names no provider"),
    ],
)
def test_a_bad_order_says_what_is_wrong(text: str, available: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        providers.parse_order(text, available)


@pytest.mark.parametrize(
    ("provider", "code", "maybe_sent", "moves_on"),
    [
        ("twilio", "circuit_open", False, True),  # the breaker is open: no request was made
        ("twilio", "503", False, True),  # "service unavailable": not processed
        ("twilio", "20003", False, True),  # credentials refused
        ("twilio", "30002", False, True),  # account suspended
        ("twilio", "21606", False, True),  # our sender is not allowed
        ("twilio", "21408", False, True),  # region not enabled for this account
        ("twilio", "21211", False, False),  # invalid number: the same everywhere
        ("twilio", "21614", False, False),  # not a mobile number
        ("twilio", "21610", False, False),  # the person replied STOP: no provider may try
        ("twilio", "500", True, False),  # may have been sent: reconcile with Twilio first
        ("twilio", "timeout", True, False),
        ("twilio", "20429", False, False),  # throttled: later, on the same provider
        ("vonage", "vonage-9", False, True),  # out of credit
        ("vonage", "vonage-15", False, True),  # sender blocked
        ("vonage", "vonage-5", False, True),  # Vonage's internal error
        ("vonage", "vonage-3", False, False),  # invalid number
        ("vonage", "vonage-7", False, False),  # number barred
        ("vonage", "vonage-1", False, False),  # throttled
        ("vonage", "20003", False, False),  # a Twilio code means nothing coming from Vonage
    ],
)
def test_which_errors_fail_over(provider: str, code: str, maybe_sent: bool, moves_on: bool) -> None:
    assert providers.fails_over(provider, code, maybe_sent=maybe_sent) is moves_on


def test_only_account_wide_failures_count_against_the_breaker() -> None:
    assert providers.provider_failing("twilio", "30002")  # suspended: nobody gets through
    assert not providers.provider_failing("twilio", "21408")  # one person abroad: fail over, keep the circuit
    assert not providers.provider_failing("vonage", "vonage-29")
    assert providers.fails_over("vonage", "vonage-29", maybe_sent=False)


VONAGE = {"VONAGE_API_KEY": "k", "VONAGE_API_SECRET": "s", "VONAGE_FROM": "447700900000"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VONAGE_API_KEY": "k", "VONAGE_FROM": "447700900000"}, "VONAGE_API_SECRET is required"),
        ({"VONAGE_API_KEY": "k", "VONAGE_API_SECRET": "s"}, "VONAGE_FROM is required"),
        ({"VONAGE_API_SECRET": "s"}, "VONAGE_API_KEY is required"),
        ({**VONAGE, "FAILOVER_VONAGE_API_BASE": "http://127.0.0.1:9"}, "must start with https://"),
        ({**VONAGE, "FAILOVER_SMS_PROVIDERS": "twilio,vonage"}, "names twilio, but twilio has no credentials"),
    ],
)
def test_vonage_settings_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    from failover.settings import load_settings

    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FAILOVER_SMS_PROVIDERS", *VONAGE):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_vonage_alone_carries_sms(monkeypatch: pytest.MonkeyPatch) -> None:
    from failover.settings import load_settings

    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FAILOVER_SMS_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in VONAGE.items():
        monkeypatch.setenv(name, value)
    assert load_settings().sms_provider_order == ("vonage",)
