"""A fake SendGrid v3 mail API: ``POST /v3/mail/send`` with the real validation and answers.

Bearer auth; 1-1000 personalizations and at most 1000 recipients in all;
202 with an empty body and ``X-Message-Id``; errors as
``{"errors": [{"message", "field", "help"}]}``; 429 with the X-RateLimit
headers. Failures can be scripted.

It also plays SendGrid's signed event webhook: events built from what it
accepted (``custom_args`` as top-level keys, ``sg_event_id``,
``sg_message_id`` = ``<X-Message-Id>.filter...``), posted as a JSON array and
signed with its own ECDSA P-256 key over ``timestamp + raw body``, with the
public key available base64 DER, as SendGrid's UI shows it.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.server import FakeServer, Request, Response

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# poster(url, raw body, headers) -> (HTTP status, body text)
Poster = Callable[[str, bytes, Mapping[str, str]], tuple[int, str]]


def http_poster(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
    response = requests.post(url, data=body, headers=dict(headers), timeout=10)
    return response.status_code, response.text


def flask_poster(client: Any) -> Poster:
    def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        response = client.post(parts.path, data=body, headers=dict(headers))
        return response.status_code, response.get_data(as_text=True)

    return post


@dataclass
class Failure:
    status: int
    message: str = "Scripted failure"
    accept: bool = False


def errors(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"errors": [{"message": message, "field": field, "help": None}]}, headers)


class FakeSendGrid(FakeServer):
    def __init__(self, api_key: str = "SG.test-key", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.sends: list[dict[str, Any]] = []  # accepted requests
        self.script: collections.deque[Failure] = collections.deque()
        self.route("POST", "/v3/mail/send", self._send)
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.poster: Poster = http_poster
        # What `failover doctor` reads: the key's scopes, the plan, sender identities, the signed webhook.
        self.scopes = list(FULL_SCOPES)
        self.plan = "paid"  # /v3/user/account "type": free | paid
        self.credits = {"remain": 48210, "total": 50000, "overage": 0, "used": 1790, "reset_frequency": "monthly"}
        self.domains: list[dict[str, Any]] = []  # /v3/whitelabel/domains
        self.senders: list[dict[str, Any]] = []  # /v3/verified_senders results
        self.webhook_signed = True
        self.route("GET", "/v3/scopes", self._scopes)
        self.route("GET", "/v3/user/account", lambda r: self._read(r, "user.account.read", self._account))
        self.route("GET", "/v3/user/credits", lambda r: self._read(r, "user.credits.read", self._credits))
        self.route("GET", "/v3/whitelabel/domains", lambda r: self._read(r, "whitelabel.read", self._domains))
        self.route("GET", "/v3/verified_senders", lambda r: self._read(r, "verified_senders.read", self._senders))
        self.route(
            "GET",
            "/v3/user/webhooks/event/settings/signed",
            lambda r: self._read(r, "user.webhooks.event.settings.read", self._signed),
        )

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid's UI shows it: base64 of the DER SubjectPublicKeyInfo."""
        der = self.signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.signing_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def events(self, event: str = "delivered", *, to: str | None = None, **extra: Any) -> list[dict[str, Any]]:
        """One event per accepted recipient (or only ``to``), shaped like SendGrid's."""
        with self.lock:
            sends = list(self.sends)
        out = []
        for send in sends:
            for number, personalization in enumerate(send["personalizations"]):
                address = personalization["to"][0]["email"]
                if to is not None and address != to:
                    continue
                item: dict[str, Any] = {
                    "email": address,
                    "timestamp": int(time.time()),
                    "event": event,
                    "sg_event_id": secrets.token_urlsafe(16),
                    "sg_message_id": f"{send['_message_id']}.filterdrecv-5645d9c87f-78xgx-1-{number}.0",
                    "smtp-id": f"<{send['_message_id']}@ismtpd0001p1iad2.sendgrid.net>",
                    "category": send.get("categories", []),
                    **personalization.get("custom_args", {}),
                }
                if event == "bounce":
                    item.update(
                        type="bounce",
                        status="5.1.1",
                        reason=f"550 5.1.1 <{address}>: Recipient address rejected: User unknown",
                    )
                elif event == "dropped":
                    item.update(reason="Bounced Address")
                elif event == "delivered":
                    item.update(response="250 2.0.0 OK", ip="168.245.1.1", tls=1)
                elif event == "deferred":
                    item.update(response="451 4.3.2 Temporary server error", attempt="1")
                item.update(extra)
                out.append(item)
        return out

    def post_events(
        self,
        url: str,
        events: list[dict[str, Any]],
        *,
        timestamp: str | None = None,
        body: bytes | None = None,
        signature: str | None = None,
        headers: Mapping[str, str | None] | None = None,  # None drops a header
    ) -> tuple[int, str]:
        """POST a batch to the event webhook, signed as SendGrid signs it unless told otherwise."""
        raw = body if body is not None else json.dumps(events).encode()
        stamp = timestamp or str(int(time.time()))
        sent: dict[str, str | None] = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            SIGNATURE_HEADER: self.sign(raw, stamp) if signature is None else signature,
            TIMESTAMP_HEADER: stamp,
        }
        sent.update(headers or {})
        return self.poster(url, raw, {k: v for k, v in sent.items() if v is not None})

    def fail_next(self, failure: Failure, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(failure)

    def recipients(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(
                to["email"] for send in self.sends for p in send["personalizations"] for to in p["to"]
            )

    def delivery_ids(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(
                p.get("custom_args", {}).get("delivery_id") for send in self.sends for p in send["personalizations"]
            )

    def too_many(self, request: Request) -> Response:
        reset = str(int(time.time()) + 1)
        return errors(
            429,
            "too many requests",
            headers={"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        )

    # -- read-only account resources (failover doctor) ------------------------------------

    def authenticate(self, domain: str, *, valid: bool = True) -> None:
        """An authenticated (whitelabel) domain, as /v3/whitelabel/domains lists it."""
        with self.lock:
            self.domains.append(
                {
                    "id": len(self.domains) + 1,
                    "user_id": 4711,
                    "subdomain": "em1234",
                    "domain": domain,
                    "username": "failover",
                    "ips": [],
                    "custom_spf": False,
                    "default": True,
                    "legacy": False,
                    "automatic_security": True,
                    "valid": valid,
                    "dns": {
                        "mail_cname": {
                            "valid": valid,
                            "type": "cname",
                            "host": f"em1234.{domain}",
                            "data": "u4711.wl.sendgrid.net",
                        },
                        "dkim1": {
                            "valid": valid,
                            "type": "cname",
                            "host": f"s1._domainkey.{domain}",
                            "data": "s1.domainkey.u4711.wl.sendgrid.net",
                        },
                        "dkim2": {
                            "valid": valid,
                            "type": "cname",
                            "host": f"s2._domainkey.{domain}",
                            "data": "s2.domainkey.u4711.wl.sendgrid.net",
                        },
                    },
                }
            )

    def _authorised(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return errors(401, "authorization required")
        return None

    def _scopes(self, request: Request) -> Response:
        return self._authorised(request) or Response.json(200, {"scopes": list(self.scopes)})

    def _read(self, request: Request, scope: str, answer: Callable[[], Any]) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        if scope not in self.scopes:
            return errors(403, "access forbidden")
        return Response.json(200, answer())

    def _account(self) -> dict[str, Any]:
        return {"type": self.plan, "reputation": 99.4}

    def _credits(self) -> dict[str, Any]:
        return {**self.credits, "last_reset": "2026-12-01", "next_reset": "2027-01-01"}

    def _domains(self) -> list[dict[str, Any]]:
        return list(self.domains)

    def _senders(self) -> dict[str, Any]:
        return {"results": list(self.senders)}

    def _signed(self) -> dict[str, Any]:
        return {"public_key": self.public_key if self.webhook_signed else ""}

    def _send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return errors(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            payload = request.json()
        except ValueError:
            return errors(400, "Bad Request", None)
        problem = _validate(payload)
        if problem:
            return errors(400, problem[1], problem[0])
        with self.lock:
            failure = self.script.popleft() if self.script else None
        if failure is not None and not failure.accept:
            return errors(failure.status, failure.message)
        message_id = secrets.token_urlsafe(16)[:22]
        with self.lock:
            self.sends.append({**payload, "_message_id": message_id, "_at": time.time()})
        if failure is not None:
            return errors(failure.status, failure.message)
        return Response(202, b"", {"X-Message-Id": message_id})


# The scopes of a full-access key that matter here (a real one lists a few hundred).
FULL_SCOPES = (
    "mail.send",
    "user.account.read",
    "user.credits.read",
    "whitelabel.read",
    "verified_senders.read",
    "user.webhooks.event.settings.read",
    "templates.read",
)


def _validate(payload: Any) -> tuple[str, str] | None:
    if not isinstance(payload, dict):
        return None, "Bad Request"  # type: ignore[return-value]
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        return "personalizations", "The personalizations field is required and must have at least one personalization."
    total = 0
    for p in personalizations:
        to = p.get("to") or []
        if not to:
            return "personalizations.to", "The to array is required for all personalization objects"
        emails = [t.get("email") for t in to]
        if len(set(emails)) != len(emails):
            return "personalizations.to", "Each email address in the personalization block should be unique"
        total += len(to)
        for value in (p.get("custom_args") or {}).values():
            if not isinstance(value, str):
                return "personalizations.custom_args", "custom_args values must be strings"
    if total > 1000:
        return "personalizations", "The total number of recipients must be less than 1000"
    if not (payload.get("from") or {}).get("email"):
        return "from.email", "The from object must be provided for every email send."
    if not payload.get("subject") and not all(p.get("subject") for p in personalizations):
        return "subject", "The subject is required."
    if not payload.get("content") and not payload.get("template_id"):
        return "content", "Unless a valid template_id is provided, the content parameter is required."
    return None
