"""Vonage's side of the webhooks: signed delivery receipts and inbound SMS (SMS API).

Vonage signs webhooks when the account has a signature secret: the request
carries ``sig`` (HMAC of every other parameter, sorted, ``&`` and ``=`` in
values replaced by ``_``) and ``timestamp``. We verify it with the SDK's
``Auth(...).check_signature``, and refuse a timestamp outside the replay
window. Receipts and inbound messages may arrive as GET query parameters, a
form POST or a JSON POST: all three are read the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from vonage import Auth

from failover.channels.callbacks import InboundSMS, StatusEvent
from failover.domain.receipts import Progress
from failover.errors import WebhookRejected

MESSAGE_PROGRESS = {
    "accepted": Progress.ACCEPTED,
    "buffered": Progress.SENT,
    "delivered": Progress.DELIVERED,
    "expired": Progress.FAILED,
    "failed": Progress.FAILED,
    "rejected": Progress.FAILED,
}
# Delivery receipt error codes (``err-code``), for the console; "0" is no error.
DLR_ERROR_TEXT = {
    "1": "unknown",
    "2": "absent subscriber (temporary)",
    "3": "absent subscriber (permanent)",
    "4": "call barred by user",
    "5": "portability error",
    "6": "anti-spam rejection",
    "7": "handset busy",
    "8": "network error",
    "9": "illegal number",
    "10": "illegal message",
    "11": "unroutable",
    "12": "destination unreachable",
    "13": "subscriber age restriction",
    "14": "number blocked by carrier",
    "15": "prepaid insufficient funds",
    "16": "gateway quota exceeded",
    "99": "general error",
}
_MESSAGE_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
MAX_INBOUND_TEXT = 3200  # a concatenated inbound message, generously


class Verifier:
    """Checks Vonage's ``sig`` with the SDK, and that ``timestamp`` is recent."""

    def __init__(
        self, *, api_key: str | None, signature_secret: str | None, signature_method: str, max_age: float
    ) -> None:
        self.api_key = api_key
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.max_age = max_age

    def verify(self, params: Mapping[str, Any], now: dt.datetime) -> None:
        if not (self.api_key and self.signature_secret):
            raise WebhookRejected(
                "Vonage webhooks cannot be verified: VONAGE_API_KEY and VONAGE_SIGNATURE_SECRET must be set"
            )
        if not params.get("sig"):
            raise WebhookRejected("unsigned Vonage webhook (no sig): turn on signed webhooks for the account")
        stamp = str(params.get("timestamp", ""))
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
            raise WebhookRejected("a signed Vonage webhook without a valid timestamp")
        age = now.timestamp() - int(stamp)
        if abs(age) > self.max_age:
            raise WebhookRejected(f"stale Vonage webhook: signed {int(age)} s ago (window {int(self.max_age)} s)")
        auth = Auth(
            api_key=self.api_key,
            signature_secret=self.signature_secret,
            signature_method=self.signature_method,  # type: ignore[arg-type]
        )
        if not auth.check_signature(dict(params)):  # it pops sig: give it a copy
            raise WebhookRejected("Vonage signature (sig) does not match this request")
        if params.get("api-key") not in (None, self.api_key):
            raise WebhookRejected("signed for another Vonage account (api-key)")


def params_of(args: Mapping[str, str], form: Mapping[str, str], json_body: Any) -> dict[str, Any]:
    """One dict of parameters, however Vonage sent them (GET query, form POST or JSON POST)."""
    if isinstance(json_body, dict):
        return dict(json_body)
    if json_body is not None:
        raise WebhookRejected("a JSON webhook body must be an object", status=400)
    return {**dict(args), **dict(form)}


def _message_id(params: Mapping[str, Any]) -> str:
    value = str(params.get("messageId") or params.get("message-id") or "")
    if not _MESSAGE_ID.match(value):
        raise WebhookRejected("messageId is missing or malformed", status=400)
    return value


def parse_status(params: Mapping[str, Any]) -> StatusEvent | None:
    """A delivery receipt; None when it names no ledger row (no client-ref: not one of our rows)."""
    message_id = _message_id(params)
    status = str(params.get("status") or "").lower()
    if not status:
        raise WebhookRejected("the receipt carries no status", status=400)
    ref = str(params.get("client-ref") or "")
    if not ref:
        return None
    if not (ref.isascii() and ref.isdigit()) or len(ref) > 18:
        raise WebhookRejected("client-ref names no delivery", status=400)
    error = str(params.get("err-code") or "0")
    code = f"vonage-dlr-{error}" if error != "0" and error.isdigit() and len(error) <= 4 else None
    text = DLR_ERROR_TEXT.get(error, "")
    detail = f"{status} {code}: {text}" if code and text else (f"{status} {code}" if code else status)
    return StatusEvent(
        provider="vonage",
        event_key=f"{message_id}:{status}",
        delivery_id=int(ref),
        provider_id=message_id,
        status=status[:24],
        progress=MESSAGE_PROGRESS.get(status, Progress.NONE),
        error_code=code,
        detail=detail,
    )


def parse_inbound(params: Mapping[str, Any]) -> InboundSMS:
    message_id = _message_id(params)
    sender = str(params.get("msisdn") or "").strip()
    if not sender or len(sender) > 64:
        raise WebhookRejected("an inbound message without an msisdn (or one over 64 characters)", status=400)
    text = str(params.get("text") or "")
    if len(text) > MAX_INBOUND_TEXT:
        raise WebhookRejected(f"text is longer than {MAX_INBOUND_TEXT} characters", status=400)
    number = sender if sender.startswith("+") else f"+{sender}"  # Vonage sends digits only
    return InboundSMS(message_sid=message_id, sender=number, body=text, provider="vonage")
