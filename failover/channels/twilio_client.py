"""Per-thread clients of the official twilio SDK, shared by the SMS and voice channels.

twilio's HTTP client keeps per-request state (the last response), so each
sending thread gets its own ``Client``; all of them point at
``FAILOVER_TWILIO_API_BASE``. Proxy and CA settings are read from the
environment once, when a client is made, instead of by requests on every call
(about a tenth of a worker's CPU at full speed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from failover.channels.base import classify_http, parse_retry_after
from failover.errors import RetryableDeliveryError
from failover.privacy import scrub


def status_callback_url(public_url: str, delivery_id: int) -> str:
    """Where Twilio posts a message's or call's progress; the ledger row's id rides along."""
    return f"{public_url}/webhooks/twilio/status?delivery={delivery_id}"


class RecordingHttpClient(TwilioHttpClient):
    """Keeps the last response's Retry-After, which TwilioRestException does not carry."""

    retry_after: float | None = None

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=True)
        assert self.session is not None
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(api_base)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.retry_after = None
        response = super().request(*args, **kwargs)
        if response.status_code in (429, 503) and response.headers:
            self.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response


class TwilioClients:
    def __init__(self, *, account_sid: str, auth_token: str, api_base: str, timeout: float) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.api_base = api_base
        self.timeout = timeout
        self._local = threading.local()
        self._made: list[RecordingHttpClient] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[Client, RecordingHttpClient]:
        """This thread's client and its HTTP client."""
        pair = getattr(self._local, "pair", None)
        if pair is None:
            http = RecordingHttpClient(api_base=self.api_base, timeout=self.timeout)
            client = Client(self.account_sid, self._auth_token, http_client=http)
            client.api.base_url = self.api_base
            pair = self._local.pair = (client, http)
            with self._lock:
                self._made.append(http)
        return pair  # type: ignore[no-any-return]

    def warm(self) -> None:
        """The SDK imports its API modules on first use: pay that before the first outage."""
        client = self.get()[0]
        _ = client.messages, client.calls

    def close(self) -> None:
        """Close every thread's keep-alive connections."""
        with self._lock:
            for http in self._made:
                if http.session is not None:
                    http.session.close()
            self._made.clear()


@contextmanager
def twilio_errors(http: RecordingHttpClient, *, may_have_sent: bool) -> Iterator[None]:
    """Map what the twilio SDK and requests raise to DeliveryErrors: the one mapping for SMS and voice.

    ``may_have_sent``: the request creates something (a message, a call), so a timeout or a connection
    dropped before the answer leaves the row in doubt; for a lookup it is only a retry.
    """
    try:
        yield
    except TwilioRestException as exc:
        raise classify_http(
            exc.status, code=exc.code, retry_after=http.retry_after, detail=scrub(str(exc.msg), 500)
        ) from None
    except requests.RequestException as exc:
        if may_have_sent and isinstance(exc, requests.Timeout):
            raise RetryableDeliveryError("Twilio did not answer in time", code="timeout", maybe_sent=True) from None
        if may_have_sent and isinstance(exc, requests.ConnectionError):
            # Refused or reset before an answer: we cannot tell whether it was sent.
            raise RetryableDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network", maybe_sent=True
            ) from None
        raise RetryableDeliveryError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from None
