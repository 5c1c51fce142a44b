"""A fake Vonage SMS API speaking the real wire format, over TLS (the vonage SDK speaks https only).

``POST /sms/json`` with form fields (``from``, ``to`` digits only, ``text``,
``client-ref``, ``callback``, ``type``) and either Basic auth (key:secret) or
``api_key`` + ``timestamp`` + ``sig`` (signed requests). It answers HTTP 200
even when it refuses, as Vonage does: ``{"message-count": "1", "messages":
[{"to", "message-id", "status": "0", "remaining-balance", "message-price",
"network"}]}``, or a non-zero ``status`` with ``error-text``. Failures can be
scripted per request, per number, or at random, as HTTP errors too.

It also calls back the way Vonage does, signed with the account's signature
secret (computed here, independently of the SDK): delivery receipts to a
message's ``callback`` and inbound messages to a configured URL.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer, Request, Response
from tests.fakes.twilio import Poster, http_poster

ERROR_TEXT = {
    1: "Throttled",
    2: "Missing from param",
    3: "Invalid to address",
    4: "Bad Credentials",
    5: "Internal Error",
    6: "Invalid Message",
    7: "Number barred",
    8: "Partner account barred",
    9: "Partner quota exceeded",
    15: "Illegal Sender Address - rejected",
    29: "Non White-listed Destination - rejected",
}


@dataclass
class VonageFailure:
    status: int = 0  # a per-message status code (HTTP 200), or
    http: int | None = None  # an HTTP error instead
    accept: bool = False  # store the message anyway (the answer is lost, the SMS is not)


def vonage_signature(secret: str, params: Mapping[str, Any], method: str = "sha256") -> str:
    """Vonage's signature: HMAC over "&key=value" of every parameter but sig, sorted, '&' '=' in values -> '_'."""
    mac = hmac.new(secret.encode(), digestmod=getattr(hashlib, method))
    for key in sorted(params):
        if key == "sig":
            continue
        value = params[key]
        if isinstance(value, str):
            value = value.replace("&", "_").replace("=", "_")
        mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


class FakeVonage(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "vonage-key",
        api_secret: str = "vonage-secret",
        signature_secret: str = "vonage-signature-secret",
        signature_method: str = "sha256",
        seed: int = 11,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.messages: list[dict[str, Any]] = []
        self.script: collections.deque[VonageFailure] = collections.deque()
        self.number_failures: dict[str, VonageFailure] = {}
        self.chaos: list[tuple[float, VonageFailure]] = []
        self._random = random.Random(seed)
        self.poster: Poster = http_poster
        self.callbacks: list[tuple[str, dict[str, str], int]] = []
        self.balance = 10.28  # EUR, what GET /account/get-balance answers
        self.auto_reload = False
        self.route("POST", "/sms/json", self._send)
        self.route("GET", "/account/get-balance", self._balance)

    # -- helpers for tests -----------------------------------------------------

    def fail_next(self, failure: VonageFailure, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(failure)

    def sent_to(self) -> collections.Counter[str]:
        """Recipients as E.164 (Vonage takes digits only)."""
        with self.lock:
            return collections.Counter(f"+{m['to']}" for m in self.messages)

    def signed(self, params: Mapping[str, str], *, timestamp: int | None = None) -> dict[str, str]:
        out = {**params, "api-key": self.api_key, "timestamp": str(timestamp or int(time.time()))}
        out["nonce"] = secrets.token_hex(8)
        out["sig"] = vonage_signature(self.signature_secret, out, self.signature_method)
        return out

    def receipt(self, message: dict[str, Any], status: str = "delivered", err_code: str = "0") -> tuple[int, str]:
        """Post a signed delivery receipt for a stored message to its callback URL."""
        params = {
            "msisdn": message["to"],
            "to": message["from"],
            "network-code": "23410",
            "messageId": message["message-id"],
            "price": "0.03330000",
            "status": status,
            "scts": time.strftime("%y%m%d%H%M", time.gmtime()),
            "err-code": err_code,
            "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        if message.get("client-ref"):
            params["client-ref"] = message["client-ref"]
        return self.post(message["callback"], self.signed(params))

    def inbound(self, url: str, sender: str, text: str, *, to: str = "447700900000") -> tuple[int, str]:
        """Post a signed inbound SMS (``sender`` in E.164 or digits) to ``url``."""
        params = {
            "msisdn": sender.lstrip("+"),
            "to": to,
            "messageId": secrets.token_hex(8).upper(),
            "text": text,
            "type": "text",
            "keyword": (text.split() or [""])[0].upper(),
            "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        return self.post(url, self.signed(params))

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        status, text = self.poster(url, params, {})
        with self.lock:
            self.callbacks.append((url, params, status))
        return status, text

    # -- the SMS API ---------------------------------------------------------------

    def _authorised(self, request: Request, form: dict[str, str]) -> bool:
        import base64

        basic = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if request.headers.get("authorization") == f"Basic {basic}":
            return True
        if form.get("api_key") == self.api_key and form.get("sig"):
            return hmac.compare_digest(
                form["sig"], vonage_signature(self.signature_secret, form, self.signature_method)
            )
        return False

    def _balance(self, request: Request) -> Response:
        """The Account API: Basic auth (or api_key/api_secret in the query); 401 with a problem document."""
        query = {k: v[0] for k, v in request.query.items()}
        if not (
            self._authorised(request, {})
            or (query.get("api_key") == self.api_key and query.get("api_secret") == self.api_secret)
        ):
            return Response.json(
                401,
                {
                    "type": "https://developer.nexmo.com/api-errors#unauthorized",
                    "title": "Unauthorized",
                    "detail": "You did not provide correct credentials.",
                    "instance": secrets.token_hex(16),
                },
            )
        return Response.json(200, {"value": self.balance, "autoReload": self.auto_reload})

    def _send(self, request: Request) -> Response:
        form = request.form()
        if not self._authorised(request, form):
            return _refusal(4)
        to, sender, text = form.get("to", ""), form.get("from", ""), form.get("text", "")
        if not sender:
            return _refusal(2)
        if not text:
            return _refusal(2, "Missing text param")
        if not (to.isdigit() and 7 <= len(to) <= 15):
            return _refusal(3)
        failure = self._failure_for(to)
        if failure is not None and not failure.accept:
            return self._failure_response(failure)
        message_id = secrets.token_hex(8).upper()
        message = {
            "to": to,
            "from": sender,
            "text": text,
            "type": form.get("type", "text"),
            "client-ref": form.get("client-ref"),
            "callback": form.get("callback"),
            "message-id": message_id,
            "_created": time.time(),
        }
        with self.lock:
            self.messages.append(message)
        if failure is not None:
            return self._failure_response(failure)
        answer = {
            "to": to,
            "message-id": message_id,
            "status": "0",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "23410",
        }
        if form.get("client-ref"):
            answer["client-ref"] = form["client-ref"]
        return Response.json(200, {"message-count": "1", "messages": [answer]})

    def _failure_for(self, to: str) -> VonageFailure | None:
        with self.lock:
            if self.script:
                return self.script.popleft()
            if f"+{to}" in self.number_failures:
                return self.number_failures[f"+{to}"]
            roll = self._random.random()
        for probability, failure in self.chaos:
            if roll < probability:
                return failure
            roll -= probability
        return None

    def _failure_response(self, failure: VonageFailure) -> Response:
        if failure.http is not None:
            return Response.json(failure.http, {"type": "about:blank", "title": "Server error"})
        return _refusal(failure.status)


def _refusal(status: int, text: str | None = None) -> Response:
    message = {"status": str(status), "error-text": text or ERROR_TEXT.get(status, "Error")}
    return Response.json(200, {"message-count": "1", "messages": [message]})
