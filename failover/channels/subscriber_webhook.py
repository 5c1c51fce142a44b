"""Webhook subscribers of the status page: a signed JSON POST in the Statuspage webhook format.

The body is the ledger row's text (rendered once when the update was told).
``X-Failover-Signature: t=<unix time>,sha256=<hex HMAC-SHA256 of "<t>.<body>">``
with the subscriber's key (``engine.subscribers.webhook_key``, shown to the
admin who added the URL): receivers check it and refuse old timestamps, so a
captured call cannot be replayed later. 2xx is delivered; 4xx other than 408
and 429 is permanent; the rest is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

import requests

from failover.channels.base import OutgoingMessage, Receipt, classify_http, parse_retry_after
from failover.errors import RetryableDeliveryError


def signature(key: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={mac}"


class WebhookChannel:
    name = "webhook"
    transport = "webhook"
    max_batch = 1

    def __init__(self, key_for: Callable[[str], str], *, timeout: float = 10.0) -> None:
        self.key_for = key_for
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        receipts = []
        for message in messages:
            body = message.body.encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "failover-status-webhook",
                "X-Failover-Signature": signature(self.key_for(message.to), body, int(time.time())),
                "X-Failover-Delivery": str(message.delivery_id),
            }
            try:
                response = self.session.post(
                    message.to, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
                )
            except requests.Timeout:
                raise RetryableDeliveryError(
                    "webhook did not answer in time", code="timeout", maybe_sent=True
                ) from None
            except requests.RequestException as exc:
                raise RetryableDeliveryError(f"cannot reach webhook: {type(exc).__name__}", code="network") from None
            if not 200 <= response.status_code < 300:
                raise classify_http(
                    response.status_code, retry_after=parse_retry_after(response.headers.get("Retry-After"))
                )
            receipts.append(Receipt(message.delivery_id, f"webhook-{message.delivery_id}"))
        return receipts

    def find(self, message: OutgoingMessage, since: object) -> Receipt | None:
        return (
            None  # a receiver keeps no list we could ask: an in-doubt call is sent again (X-Failover-Delivery dedupes)
        )

    def close(self) -> None:
        self.session.close()
