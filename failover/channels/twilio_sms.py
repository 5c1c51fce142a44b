"""SMS through the official twilio SDK.

Each thread gets its own ``Client`` (twilio's HTTP client keeps per-request
state); all of them point at ``FAILOVER_TWILIO_API_BASE``. Every message
carries a ``StatusCallback`` that names its ledger row, which is how delivery
receipts - and reconciliation after a crash - find it again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from failover.channels.base import OutgoingMessage, Receipt, classify_http, parse_retry_after
from failover.errors import RetryableDeliveryError
from failover.privacy import scrub


class _RecordingHttpClient(TwilioHttpClient):
    """Keeps the last response's Retry-After, which TwilioRestException does not carry."""

    retry_after: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.retry_after = None
        response = super().request(*args, **kwargs)
        if response.status_code in (429, 503) and response.headers:
            self.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response


class TwilioSMS:
    name = "sms"
    transport = "twilio"
    max_batch = 1  # Twilio takes one message per request

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str | None,
        messaging_service_sid: str | None,
        api_base: str,
        public_url: str,
        timeout: float = 15.0,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.api_base = api_base
        self.public_url = public_url
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[_RecordingHttpClient] = []
        self._clients_lock = threading.Lock()

    def status_callback(self, delivery_id: int) -> str:
        return f"{self.public_url}/webhooks/twilio/status?delivery={delivery_id}"

    def client(self) -> tuple[Client, _RecordingHttpClient]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            http = _RecordingHttpClient(timeout=self.timeout, pool_connections=True)
            client = Client(self.account_sid, self._auth_token, http_client=http)
            client.api.base_url = self.api_base
            pair = self._local.pair = (client, http)
            with self._clients_lock:
                self._clients.append(http)
        return pair

    def close(self) -> None:
        """Close every thread's keep-alive connections."""
        with self._clients_lock:
            for http in self._clients:
                if http.session is not None:
                    http.session.close()
            self._clients.clear()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        return [self._send_one(message) for message in messages]

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        """Reconciliation: did Twilio accept this message although we never heard back?

        Twilio has no idempotency key and its Message resource does not echo the
        StatusCallback, so we look for a message to the same number with the
        same body created since the attempt started (the newest 50 suffice).
        The dispatcher also refuses a sid that another ledger row already owns.
        """
        client, http = self.client()
        try:
            for record in client.messages.list(to=message.to, limit=50, page_size=50):
                created = record.date_created
                if record.body == message.body and (created is None or created >= since):
                    return Receipt(message.delivery_id, str(record.sid))
        except TwilioRestException as exc:
            raise classify_http(
                exc.status, code=exc.code, retry_after=http.retry_after, detail=scrub(str(exc.msg))
            ) from None
        except requests.RequestException as exc:
            raise RetryableDeliveryError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from None
        return None

    def _send_one(self, message: OutgoingMessage) -> Receipt:
        client, http = self.client()
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.sender or ""}
        )
        try:
            created = client.messages.create(
                to=message.to,
                body=message.body,
                status_callback=self.status_callback(message.delivery_id),
                **sender,
            )
        except TwilioRestException as exc:
            raise classify_http(
                exc.status, code=exc.code, retry_after=http.retry_after, detail=scrub(str(exc.msg))
            ) from None
        except requests.Timeout:
            raise RetryableDeliveryError("Twilio did not answer in time", code="timeout", maybe_sent=True) from None
        except requests.ConnectionError as exc:
            # Refused or reset before an answer: we cannot tell whether it was sent.
            raise RetryableDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network", maybe_sent=True
            ) from None
        except requests.RequestException as exc:
            raise RetryableDeliveryError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from None
        return Receipt(message.delivery_id, str(created.sid))
