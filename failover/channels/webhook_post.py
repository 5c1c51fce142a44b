"""A signed JSON POST to a system that is not a chat room (``webhook:`` rooms in config/chat.yaml).

The body is JSON; ``X-Failover-Signature: sha256=<hex>`` is the HMAC-SHA256
of the exact body keyed with the room's secret, the same scheme our own
incoming signals webhook checks (failover/sources/webhook.py), and
``X-Failover-Delivery`` is the ledger row, which receivers can use to drop a
repeat: a post whose answer was lost is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

from failover.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError

SIGNATURE_HEADER = "X-Failover-Signature"
DELIVERY_HEADER = "X-Failover-Delivery"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, secret: str, payload: dict[str, Any], *, room: str, timeout: float = 10.0) -> None:
    """POST ``payload`` signed; raises one of our two delivery errors, naming the room (never the URL)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        DELIVERY_HEADER: str(payload.get("delivery_id", "")),
    }
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise RetryableDeliveryError(f"room {room}: no answer in time", code="timeout") from None
    except requests.RequestException as exc:
        raise RetryableDeliveryError(f"room {room}: cannot reach it ({type(exc).__name__})", code="network") from None
    raise_for(response.status_code, room)


def raise_for(status: int, room: str) -> None:
    if 200 <= status < 300:
        return
    error: DeliveryError
    if status in (408, 429) or status >= 500:
        error = RetryableDeliveryError(f"room {room}: the service answered HTTP {status}", code=str(status))
    else:
        error = PermanentDeliveryError(f"room {room}: the service refused the post (HTTP {status})", code=str(status))
    raise error
