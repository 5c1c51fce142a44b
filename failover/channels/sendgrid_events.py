"""SendGrid's signed event webhook: verify the exact raw body, then read the events.

SendGrid signs ``timestamp + body`` with ECDSA P-256 / SHA-256 and sends the
signature and timestamp in headers; the verification key is the base64 DER
public key its UI shows. The SDK's ``EventWebhook`` checks the signature; we
add the replay window SendGrid leaves to us. Each event carries our
``custom_args`` (``delivery_id``) as top-level keys and an ``sg_event_id``
that the engine deduplicates on (SendGrid retries for 24 hours).
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook

from failover import inputs
from failover.channels.callbacks import StatusEvent
from failover.domain.receipts import Progress
from failover.errors import ConfigError, WebhookRejected
from failover.privacy import scrub

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FUTURE_SKEW_S = 60.0  # a sender's clock may run a little ahead of ours

EVENT_PROGRESS = {
    "processed": Progress.ACCEPTED,
    "deferred": Progress.SENT,  # the receiving server said "later"; SendGrid keeps trying
    "delivered": Progress.DELIVERED,
    "bounce": Progress.FAILED,
    "dropped": Progress.FAILED,
}


class EventVerifier:
    """Checks one request's signature and age. Build once; safe to share between threads."""

    def __init__(self, public_key: str | None, *, max_age: float) -> None:
        self.max_age = max_age
        self._webhook: EventWebhook | None = None
        if public_key:
            try:
                self._webhook = EventWebhook(public_key.strip())
            except ValueError:
                raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY: not a base64 public key as SendGrid shows it") from None
            key = self._webhook.public_key
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY: not an ECDSA P-256 key (SendGrid's verification key)")

    def verify(self, body: bytes, signature: str | None, timestamp: str | None, now: dt.datetime) -> None:
        """Raise ``WebhookRejected`` unless the body is signed, recent and intact."""
        if self._webhook is None:
            raise WebhookRejected("SendGrid events cannot be verified: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        if not signature or not timestamp:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise WebhookRejected(f"{TIMESTAMP_HEADER} is not a Unix time")
        age = now.timestamp() - int(timestamp)
        if age > self.max_age:
            raise WebhookRejected(f"signed {int(age)} s ago, outside the {int(self.max_age)} s window (a replay?)")
        if age < -FUTURE_SKEW_S:
            raise WebhookRejected(f"{TIMESTAMP_HEADER} is in the future")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected("the body is not UTF-8, so it cannot be what SendGrid signed") from None
        try:
            valid = self._webhook.verify_signature(payload, signature, timestamp)
        except (binascii.Error, ValueError):  # not base64, or not a DER signature at all
            valid = False
        if not valid:
            raise WebhookRejected(f"{SIGNATURE_HEADER} does not match the body and timestamp")


def parse_events(body: bytes) -> list[StatusEvent]:
    """The delivery events of a verified batch; events we do not track (open, click...) come back ignorable."""
    try:
        events = inputs.load_json(body)
    except inputs.InputError as exc:
        raise WebhookRejected(f"the body: {exc}", status=400) from None
    if not isinstance(events, list):
        raise WebhookRejected("expected a JSON array of events", status=400)
    return [_event(item) for item in events if isinstance(item, dict)]


def _event(item: dict[str, Any]) -> StatusEvent:
    kind = str(item.get("event", "")).lower()[:24]
    raw_id = str(item.get("delivery_id", ""))
    key = str(item.get("sg_event_id") or "")[:100]
    if not key:  # SendGrid always sends one; without it, the event's own content identifies it
        key = "sha256:" + hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
    message_id = str(item.get("sg_message_id") or "").split(".", 1)[0] or None  # "<X-Message-Id>.filter..."
    code: str | None = None
    detail = kind
    if kind == "bounce":
        status = str(item.get("status") or "").strip()[:16]
        code = f"bounce {status}".strip()
        detail = scrub(str(item.get("reason") or "bounced"), 300)
    elif kind == "dropped":
        code = "dropped"
        detail = scrub(str(item.get("reason") or "dropped"), 300)
    elif kind == "deferred":
        detail = scrub(str(item.get("response") or "deferred"), 300)
    return StatusEvent(
        provider="sendgrid",
        event_key=key,
        delivery_id=int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18 else None,
        provider_id=message_id[:64] if message_id else None,
        status=kind or "unknown",
        progress=EVENT_PROGRESS.get(kind, Progress.NONE),
        error_code=code,
        detail=detail,
    )
