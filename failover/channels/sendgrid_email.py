"""Backup mail through the official sendgrid SDK, up to 1000 recipients per request.

Every recipient is its own personalization (nobody sees anyone else's
address) carrying ``custom_args.delivery_id``, which SendGrid echoes in each
event-webhook event. A batch must share one subject and body; the dispatcher
groups rows that way.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Sequence
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from failover.channels.base import OutgoingMessage, Receipt, classify_http, parse_retry_after
from failover.clock import utcnow
from failover.errors import RetryableDeliveryError
from failover.privacy import scrub

MAX_PERSONALIZATIONS = 1000


class SendGridEmail:
    name = "email"
    transport = "sendgrid"
    max_batch = MAX_PERSONALIZATIONS

    def __init__(self, *, api_key: str, sender: str, api_base: str, timeout: float = 30.0) -> None:
        self.sender = sender
        # Extra headers per recipient (the status page's List-Unsubscribe for its subscribers), set by the runtime.
        self.headers_for: Callable[[OutgoingMessage], dict[str, str] | None] = lambda message: None
        self.client = SendGridAPIClient(api_key, host=api_base)
        self.client.client.timeout = timeout  # the SDK's default is to wait forever

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        if not messages:
            return []
        first = messages[0]
        if len(messages) > MAX_PERSONALIZATIONS:
            raise ValueError(f"at most {MAX_PERSONALIZATIONS} recipients per request")
        if any(m.subject != first.subject or m.body != first.body for m in messages):
            raise ValueError("one SendGrid request carries one subject and body")
        payload = {
            "personalizations": [self._personalization(m) for m in messages],
            "from": {"email": self.sender},
            "subject": first.subject or "(no subject)",
            "content": [{"type": "text/plain", "value": first.body}],
            "categories": ["failover"],
        }
        response = self._post(payload)
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        return [Receipt(m.delivery_id, message_id) for m in messages]

    def _personalization(self, message: OutgoingMessage) -> dict[str, object]:
        personalization: dict[str, object] = {
            "to": [{"email": message.to}],
            "custom_args": {"delivery_id": str(message.delivery_id)},
        }
        headers = self.headers_for(message)
        if headers:
            personalization["headers"] = headers
        return personalization

    def notify(self, to: str, subject: str, body: str) -> None:
        """One plain message outside the ledger (the day's audit checkpoint): no delivery id, nothing tracked."""
        self._post(
            {
                "personalizations": [{"to": [{"email": to}]}],
                "from": {"email": self.sender},
                "subject": subject,
                "content": [{"type": "text/plain", "value": body}],
                "categories": ["failover-audit"],
            }
        )

    def _post(self, payload: dict[str, object]) -> Any:
        try:
            return self.client.client.mail.send.post(request_body=payload)
        except HTTPError as exc:
            raise classify_http(
                exc.status_code, retry_after=_retry_after(exc.headers), detail=_first_error(exc)
            ) from None
        except TimeoutError:
            raise RetryableDeliveryError("SendGrid did not answer in time", code="timeout", maybe_sent=True) from None
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)
            raise RetryableDeliveryError(
                f"cannot reach SendGrid: {exc.reason}", code="network", maybe_sent=not refused
            ) from None


def _retry_after(headers: object) -> float | None:
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is None:
        return None
    explicit = parse_retry_after(get("Retry-After"))
    if explicit is not None:
        return explicit
    reset = get("X-RateLimit-Reset")  # epoch seconds when the window reopens
    if reset and str(reset).isdigit():
        return max(0.0, min(float(reset) - utcnow().timestamp(), 3600.0))
    return None


def _first_error(exc: HTTPError) -> str:
    try:
        errors = exc.to_dict.get("errors") or []
        return scrub(str(errors[0].get("message", "")), 500) if errors else ""
    except (ValueError, AttributeError, IndexError):
        return ""
