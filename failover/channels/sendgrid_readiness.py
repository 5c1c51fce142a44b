"""SendGrid readiness, through the official SDK's client: key, scopes, plan, sender identity, signed webhook.

Read-only calls: ``GET /v3/scopes`` (the key works and has ``mail.send``),
``/v3/user/account`` and ``/v3/user/credits`` (a free plan sends 100 a day;
a trial ends), ``/v3/whitelabel/domains`` and ``/v3/verified_senders`` (the
sender is authenticated or verified), ``/v3/user/webhooks/event/settings/signed``
(the signing key we verify with is SendGrid's). A key made for sending only
may not read the account: that is a good key, and the check says "skipped".
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from failover.domain import readiness as r
from failover.domain.readiness import Finding

AREA = "SendGrid"
APP = "https://app.sendgrid.com"


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def check(*, api_key: str, api_base: str, sender: str, webhook_key: str | None, timeout: float = 10.0) -> list[Finding]:
    client = SendGridAPIClient(api_key, host=api_base)
    client.client.timeout = timeout

    def get(*path: str) -> Any:
        node = client.client
        for part in path:
            node = node._(part)
        try:
            response = node.get()
        except HTTPError as exc:
            raise _Refused(exc.status_code) from None
        return json.loads(response.body or b"null")

    what = "API key valid (GET /v3/scopes)"
    try:
        scopes = set(get("scopes").get("scopes", []))
    except _Refused as exc:
        if exc.status in (401, 403):
            return [
                r.fail(
                    "sendgrid.key",
                    AREA,
                    what,
                    f"SendGrid refused the key (HTTP {exc.status})",
                    f"create a key with Mail Send at {APP}/settings/api_keys and set SENDGRID_API_KEY",
                )
            ]
        return [_unreachable("sendgrid.key", what, f"HTTP {exc.status}")]
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        return [_unreachable("sendgrid.key", what, type(exc).__name__)]
    findings = [r.ok("sendgrid.key", AREA, what, f"{len(scopes)} scope(s)")]
    what = "the key may send mail (mail.send scope)"
    if "mail.send" not in scopes:
        findings.append(
            r.fail("sendgrid.scope", AREA, what, "mail.send is missing", "give the key Mail Send: Full Access")
        )
    else:
        findings.append(r.ok("sendgrid.scope", AREA, what, "mail.send granted"))
    findings.append(_plan(get, scopes))
    findings.append(_sender(get, scopes, sender))
    findings.append(_webhook(get, scopes, webhook_key))
    return findings


def _unreachable(check: str, what: str, detail: str) -> Finding:
    return r.fail(
        check, AREA, what, f"SendGrid did not answer: {detail}", "check outbound HTTPS to api.sendgrid.com from here"
    )


def _plan(get: Any, scopes: set[str]) -> Finding:
    what = "the account can send (plan and credits)"
    if "user.account.read" not in scopes:
        return r.skipped("sendgrid.plan", AREA, what, "the key cannot read the account (fine for a send-only key)")
    try:
        account = get("user", "account") or {}
        credits = get("user", "credits") if "user.credits.read" in scopes else {}
    except (_Refused, urllib.error.URLError, OSError, ValueError) as exc:
        return r.skipped("sendgrid.plan", AREA, what, f"could not read it: {type(exc).__name__}")
    plan = str(account.get("type") or "unknown").lower()
    remain = (credits or {}).get("remain")
    detail = f"{plan} plan" + (f", {remain} of {credits.get('total')} credits left" if remain is not None else "")
    if remain is not None and int(remain) <= 0:
        return r.fail("sendgrid.plan", AREA, what, detail, f"no credits left: upgrade at {APP}/account/billing")
    if plan in ("free", "trial"):
        return r.warn(
            "sendgrid.plan",
            AREA,
            what,
            detail + ": a free or trial plan sends 100 messages a day, and a trial stops sending when it ends",
            f"move to a paid plan before relying on it: {APP}/account/billing",
        )
    return r.ok("sendgrid.plan", AREA, what, detail)


def _sender(get: Any, scopes: set[str], sender: str) -> Finding:
    what = f"the sender {sender} is verified (authenticated domain or single sender)"
    domain = r.domain_of(sender)
    readable = False
    try:
        if "whitelabel.read" in scopes:
            readable = True
            for entry in get("whitelabel", "domains") or []:
                if str(entry.get("domain", "")).lower() == domain and entry.get("valid"):
                    return r.ok("sendgrid.sender", AREA, what, f"{domain} is an authenticated domain")
        if "verified_senders.read" in scopes or "verified_senders" in scopes:
            readable = True
            for entry in (get("verified_senders") or {}).get("results", []):
                if str(entry.get("from_email", "")).lower() == sender.lower() and entry.get("verified"):
                    return r.ok("sendgrid.sender", AREA, what, f"{sender} is a verified single sender")
    except (_Refused, urllib.error.URLError, OSError, ValueError) as exc:
        return r.skipped("sendgrid.sender", AREA, what, f"could not read it: {type(exc).__name__}")
    if not readable:
        return r.skipped("sendgrid.sender", AREA, what, "the key cannot read sender identities")
    return r.fail(
        "sendgrid.sender",
        AREA,
        what,
        f"neither {domain} is authenticated nor {sender} verified: SendGrid will refuse to send",
        f"authenticate {domain} (Settings > Sender Authentication) or verify {sender} as a single sender",
    )


def _webhook(get: Any, scopes: set[str], configured: str | None) -> Finding:
    what = "signed event webhook: the verification key is configured"
    if not configured:
        return r.fail(
            "sendgrid.webhook",
            AREA,
            what,
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: delivery events are refused, so no e-mail receipts",
            "turn on the signed event webhook (Settings > Mail Settings) and copy its verification key",
        )
    if "user.webhooks.event.settings.read" not in scopes:
        return r.ok("sendgrid.webhook", AREA, what, "configured (the key cannot read SendGrid's to compare)")
    try:
        theirs = (get("user", "webhooks", "event", "settings", "signed") or {}).get("public_key")
    except (_Refused, urllib.error.URLError, OSError, ValueError) as exc:
        return r.ok("sendgrid.webhook", AREA, what, f"configured (could not compare: {type(exc).__name__})")
    if theirs and theirs.strip() != configured.strip():
        return r.fail(
            "sendgrid.webhook",
            AREA,
            what,
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not the key SendGrid signs with: every event would be refused",
            "copy the current verification key from Settings > Mail Settings > Event Webhook",
        )
    return r.ok("sendgrid.webhook", AREA, what, "configured and matches SendGrid's" if theirs else "configured")
