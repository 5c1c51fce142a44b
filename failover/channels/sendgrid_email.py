"""Backup mail through the official sendgrid SDK, up to 1000 recipients per request.

On the send loop (``send_async``) the same JSON body goes out as one aiohttp POST
on a keep-alive pool, with the SDK's headers; both paths share one error mapping.

Every recipient is its own personalization (nobody sees anyone else's
address) carrying ``custom_args.delivery_id``, which SendGrid echoes in each
event-webhook event. A batch must share one subject and body; the dispatcher
groups rows that way.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from failover.channels.base import (
    OutgoingMessage,
    Receipt,
    aiohttp_session,
    classify_http,
    parse_retry_after,
    proxy_for,
    transport_failure,
)
from failover.clock import utcnow
from failover.errors import DeliveryError, RetryableDeliveryError
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
        self.timeout = timeout
        self._url = f"{api_base.rstrip('/')}/v3/mail/send"
        self._proxy = proxy_for(self._url)
        self._session: aiohttp.ClientSession | None = None

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        if not messages:
            return []
        response = self._post(self._payload(messages))
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        return [Receipt(m.delivery_id, message_id) for m in messages]

    async def send_async(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        if not messages:
            return []
        body = json.dumps(self._payload(messages)).encode()
        if self._session is None:
            self._session = aiohttp_session()
        headers = {**self.client._default_headers, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                proxy=self._proxy,
            ) as answer:
                text = await answer.read()
                if answer.status >= 400:
                    raise _http_failure(answer.status, answer.headers, text)
                message_id = answer.headers.get("X-Message-Id", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _network_failure(exc) from None
        return [Receipt(m.delivery_id, message_id) for m in messages]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _payload(self, messages: Sequence[OutgoingMessage]) -> dict[str, object]:
        first = messages[0]
        if len(messages) > MAX_PERSONALIZATIONS:
            raise ValueError(f"at most {MAX_PERSONALIZATIONS} recipients per request")
        if any(m.subject != first.subject or m.body != first.body for m in messages):
            raise ValueError("one SendGrid request carries one subject and body")
        return {
            "personalizations": [self._personalization(m) for m in messages],
            "from": {"email": self.sender},
            "subject": first.subject or "(no subject)",
            "content": [{"type": "text/plain", "value": first.body}],
            "categories": ["failover"],
        }

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
            raise _http_failure(exc.status_code, exc.headers, exc.body) from None
        except (TimeoutError, urllib.error.URLError) as exc:
            raise _network_failure(exc) from None


def _http_failure(status: int, headers: object, body: bytes | str | None) -> DeliveryError:
    return classify_http(status, retry_after=_retry_after(headers), detail=_first_error(body))


def _network_failure(exc: BaseException) -> DeliveryError:
    """No answer (urllib or aiohttp): in doubt unless the connection was refused (nothing was sent)."""
    failure = transport_failure(exc)
    if failure == "timeout":
        return RetryableDeliveryError("SendGrid did not answer in time", code="timeout", maybe_sent=True)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    return RetryableDeliveryError(f"cannot reach SendGrid: {reason}", code="network", maybe_sent=failure != "refused")


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


def _first_error(body: bytes | str | None) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        return scrub(str(errors[0].get("message", "")), 500) if errors else ""
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
