"""Twilio readiness, through the official SDK: credentials, account, balance, the sender and its webhooks.

Read-only calls: ``GET /2010-04-01/Accounts/{sid}.json`` (credentials valid,
account active), ``…/Balance.json`` (warn under FAILOVER_TWILIO_MIN_BALANCE),
``…/IncomingPhoneNumbers.json?PhoneNumber=`` (the sender exists, can send SMS
and, if a runbook calls, voice; its inbound URL points at us) or, with a
Messaging Service, ``messaging/v1/Services/{sid}`` and its PhoneNumbers.
"""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException

from failover.channels.twilio_client import RecordingHttpClient
from failover.domain import readiness as r
from failover.domain.readiness import Finding

AREA = "Twilio"
CONSOLE = "https://console.twilio.com"


def inbound_url(public_url: str) -> str:
    return f"{public_url}/webhooks/twilio/inbound"


def check(
    *,
    account_sid: str,
    auth_token: str,
    api_base: str,
    sender: str | None,
    messaging_service_sid: str | None,
    public_url: str,
    min_balance: float,
    voice: bool,
    timeout: float = 10.0,
) -> list[Finding]:
    from twilio.rest import Client

    http = RecordingHttpClient(api_base=api_base, timeout=timeout)
    client = Client(account_sid, auth_token, http_client=http)
    client.api.base_url = api_base
    client.messaging.base_url = api_base
    try:
        return _check(client, account_sid, sender, messaging_service_sid, public_url, min_balance, voice)
    finally:
        if http.session is not None:
            http.session.close()


def _check(
    client: Any,
    account_sid: str,
    sender: str | None,
    service_sid: str | None,
    public_url: str,
    min_balance: float,
    voice: bool,
) -> list[Finding]:
    what = "credentials valid (account fetch)"
    try:
        account = client.api.v2010.accounts(account_sid).fetch()
    except TwilioRestException as exc:
        if exc.status in (401, 403):
            return [
                r.fail(
                    "twilio.credentials",
                    AREA,
                    what,
                    f"Twilio refused them (HTTP {exc.status}, code {exc.code})",
                    f"copy the Account SID and current Auth Token from {CONSOLE} into TWILIO_ACCOUNT_SID / "
                    "TWILIO_AUTH_TOKEN (was the token rotated?)",
                )
            ]
        return [_unreachable("twilio.credentials", what, f"HTTP {exc.status}, code {exc.code}")]
    except (TwilioException, OSError) as exc:
        return [_unreachable("twilio.credentials", what, type(exc).__name__)]
    findings = [r.ok("twilio.credentials", AREA, what, f"account {account.friendly_name or account_sid}")]
    status = (account.status or "").lower()
    what = "account active"
    if status != "active":
        findings.append(
            r.fail("twilio.account", AREA, what, f"account is {status or 'unknown'}", f"reactivate it at {CONSOLE}")
        )
    elif (account.type or "").lower() == "trial":
        findings.append(
            r.warn(
                "twilio.account",
                AREA,
                what,
                "a trial account: it only texts verified numbers and prefixes every message",
                f"upgrade the account at {CONSOLE}",
            )
        )
    else:
        findings.append(r.ok("twilio.account", AREA, what, f"{account.type or 'Full'} account, active"))
    findings.append(_balance(client, account_sid, min_balance))
    if service_sid:
        findings += _service(client, service_sid, public_url, voice)
    elif sender:
        findings += _number(client, sender, public_url, voice)
    return findings


def _unreachable(check: str, what: str, detail: str) -> Finding:
    return r.fail(
        check, AREA, what, f"Twilio did not answer: {detail}", "check outbound HTTPS to api.twilio.com from here"
    )


def _balance(client: Any, account_sid: str, min_balance: float) -> Finding:
    what = f"balance above FAILOVER_TWILIO_MIN_BALANCE ({min_balance:.2f})"
    try:
        balance = client.api.v2010.accounts(account_sid).balance.fetch()
        amount = float(balance.balance)
    except (TwilioException, OSError, TypeError, ValueError) as exc:
        return r.warn("twilio.balance", AREA, what, f"could not read it: {type(exc).__name__}", "check by hand")
    result, text = r.balance(amount, balance.currency or "", threshold=min_balance)
    fix = f"top up at {CONSOLE} (or turn on auto-recharge)" if result != r.Result.OK else ""
    return r.Finding("twilio.balance", AREA, what, result, text, fix)


def _number(client: Any, sender: str, public_url: str, voice: bool) -> list[Finding]:
    what = f"the sender {sender} is a number of this account"
    try:
        numbers = client.incoming_phone_numbers.list(phone_number=sender, limit=5)
    except (TwilioException, OSError) as exc:
        return [r.warn("twilio.sender", AREA, what, f"could not look it up: {type(exc).__name__}", "check by hand")]
    number = next((n for n in numbers if n.phone_number == sender), None)
    if number is None:
        return [
            r.fail(
                "twilio.sender",
                AREA,
                what,
                "not found among the account's phone numbers",
                "set TWILIO_FROM to a number you own (Phone Numbers > Active numbers) or use a Messaging Service",
            )
        ]
    capabilities = {k.lower(): bool(v) for k, v in (number.capabilities or {}).items()}
    needed = ["sms"] + (["voice"] if voice else [])
    missing = [c for c in needed if not capabilities.get(c)]
    findings = []
    what = "the sender can send " + " and ".join(c.upper() if c == "sms" else c for c in needed)
    if missing:
        findings.append(
            r.fail(
                "twilio.sender",
                AREA,
                what,
                f"{sender} cannot do {', '.join(missing)}",
                "buy a number with these capabilities, or take the voice steps out of the runbooks",
            )
        )
    else:
        findings.append(r.ok("twilio.sender", AREA, what, f"{sender}: {', '.join(needed)}"))
    findings.append(_webhook_urls(number.sms_url, number.status_callback, public_url, f"number {sender}"))
    return findings


def _service(client: Any, service_sid: str, public_url: str, voice: bool) -> list[Finding]:
    what = f"the Messaging Service {service_sid} exists and has senders"
    try:
        service = client.messaging.v1.services(service_sid).fetch()
        numbers = client.messaging.v1.services(service_sid).phone_numbers.list(limit=50)
    except TwilioRestException as exc:
        return [
            r.fail(
                "twilio.sender",
                AREA,
                what,
                f"Twilio answered HTTP {exc.status} (code {exc.code})",
                "set TWILIO_MESSAGING_SERVICE_SID to a service of this account (Messaging > Services)",
            )
        ]
    except (TwilioException, OSError) as exc:
        return [r.warn("twilio.sender", AREA, what, f"could not look it up: {type(exc).__name__}", "check by hand")]
    findings = []
    if not numbers:
        findings.append(r.fail("twilio.sender", AREA, what, "the service has no sender numbers", "add a number"))
    else:
        findings.append(r.ok("twilio.sender", AREA, what, f"{service.friendly_name}: {len(numbers)} number(s)"))
    if voice:
        findings.append(
            r.skipped(
                "twilio.voice",
                AREA,
                "a caller id for voice steps",
                "calls need TWILIO_FROM: a Messaging Service cannot place calls",
                "set TWILIO_FROM to a voice-capable number as well",
            )
        )
    inbound = None if service.use_inbound_webhook_on_number else service.inbound_request_url
    findings.append(_webhook_urls(inbound, service.status_callback, public_url, f"service {service_sid}"))
    return findings


def _webhook_urls(inbound: str | None, status_callback: str | None, public_url: str, owner: str) -> Finding:
    """Replies and STOPs reach us only if Twilio posts them to FAILOVER_PUBLIC_URL."""
    what = "inbound SMS and status callbacks point at FAILOVER_PUBLIC_URL"
    expected = inbound_url(public_url)
    wrong = []
    if (inbound or "").rstrip("/") != expected:
        wrong.append(f"inbound SMS goes to {inbound or 'nowhere'}")
    if status_callback and not status_callback.startswith(public_url + "/"):
        wrong.append(f"status callback goes to {status_callback}")
    if wrong:
        return r.fail(
            "twilio.webhooks",
            AREA,
            what,
            f"{owner}: " + "; ".join(wrong),
            f"set 'A message comes in' to {expected} (HTTP POST) and clear or fix the status callback; "
            "without it replies, ACKs and STOP never arrive",
        )
    return r.ok("twilio.webhooks", AREA, what, f"{owner}: {expected}")
