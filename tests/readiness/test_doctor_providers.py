"""Doctor's Twilio and SendGrid checks, through the official SDKs, against the fakes in good and broken states."""

from __future__ import annotations

from typing import Any

import pytest

from failover.channels import sendgrid_readiness, twilio_readiness
from failover.domain.readiness import Finding, Result
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio

PUBLIC = "https://failover.example.org"
SENDER = "+12025550100"
INBOUND = f"{PUBLIC}/webhooks/twilio/inbound"


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def twilio_check(fake: FakeTwilio, **overrides: Any) -> dict[str, Finding]:
    kwargs: dict[str, Any] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "api_base": fake.url,
        "sender": SENDER,
        "messaging_service_sid": None,
        "public_url": PUBLIC,
        "min_balance": 20.0,
        "voice": True,
    }
    kwargs.update(overrides)
    return by_check(twilio_readiness.check(**kwargs))


# -- Twilio ----------------------------------------------------------------------------------


def test_twilio_good(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_number(SENDER, sms_url=INBOUND)
    found = twilio_check(fake_twilio)
    assert {check: f.result for check, f in found.items()} == {
        "twilio.credentials": Result.OK,
        "twilio.account": Result.OK,
        "twilio.balance": Result.OK,
        "twilio.sender": Result.OK,
        "twilio.webhooks": Result.OK,
    }
    assert "42.17 USD" in found["twilio.balance"].detail
    assert "sms, voice" in found["twilio.sender"].detail
    # The SDK really asked the fake, with the number as a filter.
    assert fake_twilio.requests("GET", f"/2010-04-01/Accounts/{fake_twilio.account_sid}/IncomingPhoneNumbers.json")


def test_twilio_bad_token(fake_twilio: FakeTwilio) -> None:
    found = twilio_check(fake_twilio, auth_token="rotated-away")
    assert list(found) == ["twilio.credentials"]
    assert found["twilio.credentials"].result == Result.FAIL
    assert "401" in found["twilio.credentials"].detail and "rotated" in found["twilio.credentials"].fix
    assert "rotated-away" not in found["twilio.credentials"].detail


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [("suspended", "Full", Result.FAIL), ("closed", "Full", Result.FAIL), ("active", "Trial", Result.WARN)],
)
def test_twilio_account_not_usable(fake_twilio: FakeTwilio, status: str, kind: str, expected: Result) -> None:
    fake_twilio.add_number(SENDER, sms_url=INBOUND)
    fake_twilio.account_status, fake_twilio.account_type = status, kind
    assert twilio_check(fake_twilio)["twilio.account"].result == expected


@pytest.mark.parametrize(
    ("balance", "expected"), [("19.99", Result.WARN), ("0.00", Result.FAIL), ("-3.10", Result.FAIL)]
)
def test_twilio_balance_threshold(fake_twilio: FakeTwilio, balance: str, expected: Result) -> None:
    fake_twilio.add_number(SENDER, sms_url=INBOUND)
    fake_twilio.balance = balance
    finding = twilio_check(fake_twilio)["twilio.balance"]
    assert finding.result == expected
    assert "top up" in finding.fix


def test_twilio_sender_not_on_the_account(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_number("+12025550199", sms_url=INBOUND)
    found = twilio_check(fake_twilio)
    assert found["twilio.sender"].result == Result.FAIL
    assert "not found" in found["twilio.sender"].detail
    assert "twilio.webhooks" not in found


def test_twilio_sender_without_voice_fails_only_when_a_runbook_calls(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_number(SENDER, voice=False, sms_url=INBOUND)
    assert twilio_check(fake_twilio, voice=True)["twilio.sender"].result == Result.FAIL
    assert twilio_check(fake_twilio, voice=False)["twilio.sender"].result == Result.OK


def test_twilio_inbound_url_elsewhere(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_number(SENDER, sms_url="https://demo.twilio.com/welcome/sms/reply", status_callback="")
    finding = twilio_check(fake_twilio)["twilio.webhooks"]
    assert finding.result == Result.FAIL
    assert "demo.twilio.com" in finding.detail and INBOUND in finding.fix


def test_twilio_status_callback_elsewhere(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_number(SENDER, sms_url=INBOUND, status_callback="https://old-host.example/status")
    finding = twilio_check(fake_twilio)["twilio.webhooks"]
    assert finding.result == Result.FAIL and "old-host.example" in finding.detail


def test_twilio_messaging_service(fake_twilio: FakeTwilio) -> None:
    sid = fake_twilio.add_service([SENDER], inbound_request_url=INBOUND)
    found = twilio_check(fake_twilio, sender=None, messaging_service_sid=sid, voice=False)
    assert found["twilio.sender"].result == Result.OK and "1 number" in found["twilio.sender"].detail
    assert found["twilio.webhooks"].result == Result.OK
    unknown = twilio_check(fake_twilio, sender=None, messaging_service_sid="MG" + "f" * 32, voice=False)
    assert unknown["twilio.sender"].result == Result.FAIL and "404" in unknown["twilio.sender"].detail


def test_twilio_messaging_service_inbound_elsewhere(fake_twilio: FakeTwilio) -> None:
    sid = fake_twilio.add_service([SENDER], inbound_request_url="https://example.com/hook")
    found = twilio_check(fake_twilio, sender=None, messaging_service_sid=sid, voice=False)
    assert found["twilio.webhooks"].result == Result.FAIL


def test_twilio_unreachable(fake_twilio: FakeTwilio) -> None:
    url = fake_twilio.url
    fake_twilio.stop()
    found = twilio_check(fake_twilio, api_base=url)
    assert found["twilio.credentials"].result == Result.FAIL
    assert "did not answer" in found["twilio.credentials"].detail


# -- SendGrid -------------------------------------------------------------------------------


def sendgrid_check(fake: FakeSendGrid, **overrides: Any) -> dict[str, Finding]:
    kwargs: dict[str, Any] = {
        "api_key": fake.api_key,
        "api_base": fake.url,
        "sender": "alerts@failover-mail.example.org",
        "webhook_key": fake.public_key,
    }
    kwargs.update(overrides)
    return by_check(sendgrid_readiness.check(**kwargs))


def test_sendgrid_good(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.authenticate("failover-mail.example.org")
    found = sendgrid_check(fake_sendgrid)
    assert {check: f.result for check, f in found.items()} == {
        "sendgrid.key": Result.OK,
        "sendgrid.scope": Result.OK,
        "sendgrid.plan": Result.OK,
        "sendgrid.sender": Result.OK,
        "sendgrid.webhook": Result.OK,
    }
    assert "matches" in found["sendgrid.webhook"].detail
    assert fake_sendgrid.requests("GET", "/v3/scopes")


def test_sendgrid_bad_key(fake_sendgrid: FakeSendGrid) -> None:
    found = sendgrid_check(fake_sendgrid, api_key="SG.revoked")
    assert list(found) == ["sendgrid.key"]
    assert found["sendgrid.key"].result == Result.FAIL and "401" in found["sendgrid.key"].detail


def test_sendgrid_key_without_mail_send(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.authenticate("failover-mail.example.org")
    fake_sendgrid.scopes.remove("mail.send")
    assert sendgrid_check(fake_sendgrid)["sendgrid.scope"].result == Result.FAIL


def test_sendgrid_free_plan_is_a_warning(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.authenticate("failover-mail.example.org")
    fake_sendgrid.plan = "free"
    fake_sendgrid.credits = {"remain": 100, "total": 100, "overage": 0, "used": 0, "reset_frequency": "daily"}
    finding = sendgrid_check(fake_sendgrid)["sendgrid.plan"]
    assert finding.result == Result.WARN
    assert "100 messages a day" in finding.detail and "100 of 100" in finding.detail


def test_sendgrid_no_credits_left(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.credits = {"remain": 0, "total": 100, "overage": 0, "used": 100, "reset_frequency": "daily"}
    assert sendgrid_check(fake_sendgrid)["sendgrid.plan"].result == Result.FAIL


def test_sendgrid_unverified_sender(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.authenticate("other.example.org")
    fake_sendgrid.authenticate("failover-mail.example.org", valid=False)
    finding = sendgrid_check(fake_sendgrid)["sendgrid.sender"]
    assert finding.result == Result.FAIL and "refuse" in finding.detail


def test_sendgrid_verified_single_sender(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.senders.append(
        {"id": 1, "nickname": "failover", "from_email": "alerts@failover-mail.example.org", "verified": True}
    )
    finding = sendgrid_check(fake_sendgrid)["sendgrid.sender"]
    assert finding.result == Result.OK and "single sender" in finding.detail


def test_sendgrid_webhook_key_missing_or_wrong(fake_sendgrid: FakeSendGrid) -> None:
    assert sendgrid_check(fake_sendgrid, webhook_key=None)["sendgrid.webhook"].result == Result.FAIL
    other = FakeSendGrid().public_key  # a key of another account
    finding = sendgrid_check(fake_sendgrid, webhook_key=other)["sendgrid.webhook"]
    assert finding.result == Result.FAIL and "not the key" in finding.detail


def test_sendgrid_send_only_key_skips_what_it_cannot_read(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.scopes = ["mail.send"]
    found = sendgrid_check(fake_sendgrid)
    assert found["sendgrid.key"].result == Result.OK and found["sendgrid.scope"].result == Result.OK
    assert found["sendgrid.plan"].result == Result.SKIPPED
    assert found["sendgrid.sender"].result == Result.SKIPPED
    assert found["sendgrid.webhook"].result == Result.OK
