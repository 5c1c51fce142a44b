"""Clients of the official twilio SDK, shared by the SMS and voice channels.

For the send loop (failover/sendloop.py) one asynchronous client per channel
(``AsyncTwilio``: the SDK's ``*_async`` methods over one aiohttp keep-alive
pool). For synchronous callers (voice, reconciliation lookups, readiness)
per-thread clients: twilio's HTTP client keeps per-request state (the last
response), so each thread gets its own ``Client``. All of them point at
``FAILOVER_TWILIO_API_BASE``. Proxy and CA settings are read from the
environment once, when a client is made, not on every call.

The Retry-After of a 429/503 (which TwilioRestException does not carry) is kept
in a context variable: per thread for the synchronous clients, per request
(task) on the loop. ``twilio_errors`` is the one error mapping for both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import aiohttp
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from failover.channels.base import (
    aiohttp_session,
    basic_auth,
    ca_bundle,
    classify_http,
    parse_retry_after,
    proxy_for,
    transport_failure,
)
from failover.errors import RetryableDeliveryError
from failover.privacy import scrub

_retry_after: ContextVar[float | None] = ContextVar("twilio_retry_after", default=None)


def status_callback_url(public_url: str, delivery_id: int) -> str:
    """Where Twilio posts a message's or call's progress; the ledger row's id rides along."""
    return f"{public_url}/webhooks/twilio/status?delivery={delivery_id}"


class RecordingHttpClient(TwilioHttpClient):
    """Keeps the last response's Retry-After, which TwilioRestException does not carry."""

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=True)
        assert self.session is not None
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(api_base)
        self.session.verify = ca_bundle() or True

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _retry_after.set(None)
        response = super().request(*args, **kwargs)
        if response.status_code in (429, 503) and response.headers:
            _retry_after.set(parse_retry_after(response.headers.get("Retry-After")))
        return response


class AsyncRecordingHttpClient(AsyncHttpClient):
    """The SDK's asynchronous HTTP client on one aiohttp keep-alive pool, keeping Retry-After per request."""

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(None, True, timeout)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._proxy = proxy_for(api_base)
        self.session = aiohttp_session()

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        _retry_after.set(None)
        async with self.session.request(
            method.upper(),
            url,
            params=cast(Any, params),
            data=data,
            headers={**(headers or {}), "Authorization": basic_auth(*auth)} if auth else headers,
            timeout=aiohttp.ClientTimeout(total=timeout) if timeout else self._timeout,
            allow_redirects=allow_redirects,
            proxy=self._proxy,
        ) as answer:
            text = await answer.text()
            if answer.status in (429, 503):
                _retry_after.set(parse_retry_after(answer.headers.get("Retry-After")))
            return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        await self.session.close()


class AsyncTwilio:
    """One asynchronous SDK client, made on the send loop when first used."""

    def __init__(self, *, account_sid: str, auth_token: str, api_base: str, timeout: float) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.api_base = api_base
        self.timeout = timeout
        self._client: Client | None = None
        self._http: AsyncRecordingHttpClient | None = None

    def get(self) -> Client:
        if self._client is None:
            self._http = AsyncRecordingHttpClient(api_base=self.api_base, timeout=self.timeout)
            client = Client(self.account_sid, self._auth_token, http_client=self._http)
            client.api.base_url = self.api_base
            self._client = client
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


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
def twilio_errors(*, may_have_sent: bool) -> Iterator[None]:
    """Map what the twilio SDK, requests and aiohttp raise to DeliveryErrors: the one mapping for SMS and
    voice, synchronous or on the send loop.

    ``may_have_sent``: the request creates something (a message, a call), so a timeout or a connection
    dropped before the answer leaves the row in doubt; for a lookup it is only a retry.
    """
    try:
        yield
    except TwilioRestException as exc:
        raise classify_http(
            exc.status, code=exc.code, retry_after=_retry_after.get(), detail=scrub(str(exc.msg), 500)
        ) from None
    except (requests.RequestException, aiohttp.ClientError, TimeoutError) as exc:
        failure = transport_failure(exc)
        if may_have_sent and failure == "timeout":
            raise RetryableDeliveryError("Twilio did not answer in time", code="timeout", maybe_sent=True) from None
        if may_have_sent and failure in ("refused", "dropped"):
            # Refused or reset before an answer: we cannot tell whether it was sent.
            raise RetryableDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network", maybe_sent=True
            ) from None
        raise RetryableDeliveryError(f"cannot reach Twilio: {type(exc).__name__}", code="network") from None
