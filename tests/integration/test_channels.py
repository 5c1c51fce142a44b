"""One contract, every provider channel: the real SDKs against fakes that speak the wire format.

Each contract test runs twice: through the channel's synchronous ``send`` and through
``send_async`` on a send loop (failover/sendloop.py), which must classify every answer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from failover.channels.base import OutgoingMessage
from failover.channels.sendgrid_email import SendGridEmail
from failover.channels.twilio_sms import TwilioSMS
from failover.errors import PermanentDeliveryError, RetryableDeliveryError
from failover.sendloop import SendLoop
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw


class OnLoop:
    """A channel driven through ``send_async`` on a send loop, with the synchronous ``send`` signature."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.loop = SendLoop(None)
        self.loop.on_close(channel.aclose)

    def send(self, messages: list[OutgoingMessage]) -> Any:
        return self.loop.submit(self.channel.send_async(messages)).result(timeout=30)

    def close(self) -> None:
        self.loop.close()
        getattr(self.channel, "close", lambda: None)()


def on_path(channel: Any, path: str) -> Any:
    return OnLoop(channel) if path == "async" else channel


@dataclass
class Harness:
    name: str
    channel: Any
    fake: Any
    message: OutgoingMessage
    fail_next: Callable[[int, float | None], None]  # status, retry_after
    permanent: Callable[[], None]
    accepted: Callable[[], int]
    path: str = "sync"


def twilio_harness(fake: tw.FakeTwilio, timeout: float) -> Harness:
    channel = TwilioSMS(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender="+12025550100",
        messaging_service_sid=None,
        api_base=fake.url,
        public_url="https://failover.example",
        timeout=timeout,
    )
    code = {429: 20429}
    return Harness(
        "twilio",
        channel,
        fake,
        OutgoingMessage(41, "+12025550101", "Email is down. Reply ACK."),
        lambda status, after: fake.fail_next(tw.Failure(status, code.get(status), "Server error", after)),
        lambda: fake.fail_next(tw.Failure(400, 21211, "The 'To' number +12025550101 is not a valid phone number.")),
        lambda: len(fake.messages),
    )


def sendgrid_harness(fake: sg.FakeSendGrid, timeout: float) -> Harness:
    channel = SendGridEmail(api_key=fake.api_key, sender="alerts@failover.example", api_base=fake.url, timeout=timeout)

    def fail(status: int, after: float | None) -> None:
        fake.fail_next(sg.Failure(status, "Server error"))

    return Harness(
        "sendgrid",
        channel,
        fake,
        OutgoingMessage(42, "alice@personal.example", "Email is down.", "Outage"),
        fail,
        lambda: fake.fail_next(sg.Failure(400, "Does not contain a valid address.")),
        lambda: len(fake.sends),
    )


@pytest.fixture(params=["twilio-sync", "twilio-async", "sendgrid-sync", "sendgrid-async"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    name, path = request.param.split("-")
    fake: Any = tw.FakeTwilio() if name == "twilio" else sg.FakeSendGrid()
    with fake:
        built = (twilio_harness if name == "twilio" else sendgrid_harness)(fake, 2.0)
        built.channel = on_path(built.channel, path)
        built.path = path
        yield built
        getattr(built.channel, "close", lambda: None)()


def test_success_returns_one_receipt_per_message(harness: Harness) -> None:
    receipts = harness.channel.send([harness.message])
    assert [r.delivery_id for r in receipts] == [harness.message.delivery_id]
    assert receipts[0].provider_id
    assert harness.accepted() == 1


def test_429_is_retryable_and_carries_retry_after(harness: Harness) -> None:
    harness.fail_next(429, 7)
    with pytest.raises(RetryableDeliveryError) as caught:
        harness.channel.send([harness.message])
    assert caught.value.code in {"20429", "429"}
    if harness.name == "twilio":
        assert caught.value.retry_after == 7
    assert not caught.value.maybe_sent  # a 429 was never processed: safe to send again
    assert harness.accepted() == 0


def test_5xx_is_retryable_but_may_have_been_sent(harness: Harness) -> None:
    harness.fail_next(500, None)
    with pytest.raises(RetryableDeliveryError) as caught:
        harness.channel.send([harness.message])
    assert caught.value.maybe_sent
    assert caught.value.code == "500"


def test_permanent_errors_are_not_retryable(harness: Harness) -> None:
    harness.permanent()
    with pytest.raises(PermanentDeliveryError) as caught:
        harness.channel.send([harness.message])
    if harness.name == "twilio":
        assert caught.value.code == "21211"
        assert "+12025550101" not in caught.value.detail  # contact data scrubbed from errors
    else:
        assert caught.value.code == "400"


def test_a_timeout_is_retryable_and_in_doubt(harness: Harness) -> None:
    harness.fake.latency = 1.0
    getattr(harness.channel, "close", lambda: None)()
    slow = (twilio_harness if harness.name == "twilio" else sendgrid_harness)(harness.fake, 0.2).channel
    harness.channel = on_path(slow, harness.path)
    with pytest.raises(RetryableDeliveryError) as caught:
        harness.channel.send([harness.message])
    assert caught.value.code == "timeout"
    assert caught.value.maybe_sent


def test_an_unreachable_provider_is_retryable(harness: Harness) -> None:
    harness.fake.stop()
    with pytest.raises(RetryableDeliveryError) as caught:
        harness.channel.send([harness.message])
    assert caught.value.code == "network"
    # Refused: SendGrid knows nothing left; Twilio's mapping reads any connection failure as in doubt.
    assert caught.value.maybe_sent == (harness.name == "twilio")


def test_twilio_request_is_the_real_wire_format(fake_twilio: tw.FakeTwilio) -> None:
    channel = twilio_harness(fake_twilio, 5).channel
    channel.send([OutgoingMessage(9, "+12025550101", "hello")])
    request = fake_twilio.requests("POST")[0]
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": "+12025550101",
        "Body": "hello",
        "From": "+12025550100",
        "StatusCallback": "https://failover.example/webhooks/twilio/status?delivery=9",
    }


def test_twilio_messaging_service_instead_of_from(fake_twilio: tw.FakeTwilio) -> None:
    channel = TwilioSMS(
        account_sid=fake_twilio.account_sid,
        auth_token=fake_twilio.auth_token,
        sender=None,
        messaging_service_sid="MG" + "1" * 32,
        api_base=fake_twilio.url,
        public_url="https://failover.example",
    )
    channel.send([OutgoingMessage(9, "+12025550101", "hello")])
    form = fake_twilio.requests("POST")[0].form()
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


def test_twilio_wrong_credentials_are_permanent(fake_twilio: tw.FakeTwilio) -> None:
    channel = TwilioSMS(
        account_sid=fake_twilio.account_sid,
        auth_token="wrong",
        sender="+12025550100",
        messaging_service_sid=None,
        api_base=fake_twilio.url,
        public_url="https://f.example",
    )
    with pytest.raises(PermanentDeliveryError, match="HTTP 401 code 20003"):
        channel.send([OutgoingMessage(9, "+12025550101", "hello")])


def test_sendgrid_batches_a_thousand_personalizations_in_one_request(fake_sendgrid: sg.FakeSendGrid) -> None:
    channel = sendgrid_harness(fake_sendgrid, 5).channel
    messages = [OutgoingMessage(i, f"p{i}@personal.example", "Body", "Subject") for i in range(1000)]
    receipts = channel.send(messages)
    assert len(receipts) == 1000 and len(fake_sendgrid.sends) == 1
    send = fake_sendgrid.sends[0]
    assert len(send["personalizations"]) == 1000
    assert send["personalizations"][0] == {
        "to": [{"email": "p0@personal.example"}],
        "custom_args": {"delivery_id": "0"},
    }
    assert send["content"] == [{"type": "text/plain", "value": "Body"}]
    assert {r.provider_id for r in receipts} == {send["_message_id"]}
    request = fake_sendgrid.requests("POST")[0]
    assert request.headers["authorization"] == f"Bearer {fake_sendgrid.api_key}"


def test_sendgrid_refuses_mixed_content_or_oversized_batches(fake_sendgrid: sg.FakeSendGrid) -> None:
    channel = sendgrid_harness(fake_sendgrid, 5).channel
    with pytest.raises(ValueError, match="one subject and body"):
        channel.send([OutgoingMessage(1, "a@x.example", "A", "S"), OutgoingMessage(2, "b@x.example", "B", "S")])
    with pytest.raises(ValueError, match="at most 1000"):
        channel.send([OutgoingMessage(i, f"{i}@x.example", "A", "S") for i in range(1001)])
    assert fake_sendgrid.requests() == []


def test_sendgrid_429_retry_after_comes_from_the_rate_limit_reset(fake_sendgrid: sg.FakeSendGrid) -> None:
    fake_sendgrid.max_concurrent = 0  # every request is over the limit
    channel = sendgrid_harness(fake_sendgrid, 5).channel
    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send([OutgoingMessage(1, "a@x.example", "A", "S")])
    assert caught.value.code == "429"
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 2


def test_twilio_reconciliation_finds_an_accepted_message(fake_twilio: tw.FakeTwilio) -> None:
    import datetime as dt

    channel = twilio_harness(fake_twilio, 5).channel
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    message = OutgoingMessage(5, "+12025550101", "Email is down. Reply ACK.")
    assert channel.find(message, since) is None
    sent = channel.send([message])[0]
    found = channel.find(message, since)
    assert found is not None and found.provider_id == sent.provider_id
    assert channel.find(OutgoingMessage(6, "+12025550101", "another text"), since) is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert channel.find(message, later) is None  # older than the attempt: not ours
    channel.close()
