"""The one small interface every channel implements, and how provider errors are classified.

A channel takes a batch of messages (at most ``max_batch``) and either hands
all of them to its provider, returning one :class:`Receipt` per message, or
raises :class:`~failover.errors.RetryableDeliveryError` /
:class:`~failover.errors.PermanentDeliveryError` for the batch. It never
returns a bool and never swallows an error. Channels know nothing about the
ledger: the dispatcher decides what a receipt or an error means for a row.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp
import requests

from failover.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    to: str  # phone number, email address, or "" for the status page
    body: str
    subject: str | None = None  # email subject, status notice title
    severity: str | None = None  # status notices
    incident_id: int | None = None
    step: str | None = None  # the runbook step it comes from ("on_resolve.2": the status page resolves)


@dataclass(frozen=True)
class Receipt:
    delivery_id: int
    provider_id: str


class NoLookup(DeliveryError):
    """The provider cannot say whether it took a message (Vonage has no lookup): only a receipt can."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="no_lookup")


class Channel(Protocol):
    """Sends messages of one kind (``name``: sms, email, status) through one transport.

    ``transport`` names the provider (twilio, sendgrid, outbox, status) for the
    ledger and the console. ``send`` must be safe to call from several threads.
    A channel may also have ``async def send_async(messages)`` (same contract, on
    the worker's send loop, failover/sendloop.py) and ``async def aclose()``.
    """

    name: str
    transport: str
    max_batch: int

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]: ...


# Twilio error codes that will fail the same way however often they are retried.
TWILIO_PERMANENT = frozenset(
    {21211, 21212, 21408, 21604, 21606, 21610, 21612, 21614, 21617, 30003, 30004, 30005, 30006, 30007, 30008}
)
# Codes that mean "not now": the request was not processed or the queue is full.
TWILIO_RETRYABLE = frozenset({20429, 21611, 30001, 30002})


def classify_http(
    status: int | None, *, code: int | None = None, retry_after: float | None = None, detail: str = ""
) -> RetryableDeliveryError | PermanentDeliveryError:
    """Map a provider's HTTP status (and Twilio code) to one of our two error kinds."""
    label = f"HTTP {status}" if status else "no response"
    code_text = str(code) if code else (str(status) if status else None)
    reason = f"{label}{f' code {code}' if code else ''}: {detail}".rstrip(": ")
    if code in TWILIO_RETRYABLE:
        return RetryableDeliveryError(reason, code=code_text, retry_after=retry_after)
    if code in TWILIO_PERMANENT:
        return PermanentDeliveryError(reason, code=code_text)
    if status == 429:
        return RetryableDeliveryError(reason, code=code_text, retry_after=retry_after)
    if status == 503:
        # "Service unavailable": the provider says it did not process the request (it is down or shedding
        # load). Taken at its word, so the message may go to another provider at once (domain.providers).
        return RetryableDeliveryError(reason, code="503", retry_after=retry_after)
    if status is None or status == 408 or status >= 500:
        # The request reached the provider: it may have been accepted.
        return RetryableDeliveryError(reason, code=code_text, retry_after=retry_after, maybe_sent=True)
    return PermanentDeliveryError(reason, code=code_text)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta-seconds form providers use)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, min(seconds, 3600.0))


Failure = Literal["timeout", "refused", "dropped", "other"]


def transport_failure(exc: BaseException) -> Failure:
    """How a request failed below HTTP, whichever client made it (requests, urllib, aiohttp).

    "timeout": no answer in time; "refused": the connection was refused, so nothing was sent;
    "dropped": the connection failed some other way, perhaps after the request left; "other":
    the request could not be made at all. Each channel decides what these mean for its provider.
    """
    if isinstance(exc, requests.Timeout | TimeoutError):  # aiohttp's timeouts are TimeoutErrors
        return "timeout"
    if isinstance(exc, urllib.error.URLError):
        return "refused" if isinstance(exc.reason, ConnectionRefusedError) else "dropped"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, requests.ConnectionError | aiohttp.ClientConnectionError):
        return "dropped"  # requests does not say reliably whether it was refused: take the cautious reading
    return "other"


def ca_bundle() -> str | None:
    """The CA bundle the environment names (as requests reads it), for clients that do not read it themselves."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle())


def aiohttp_session() -> aiohttp.ClientSession:
    """A keep-alive pool for one provider on the send loop. No connection cap (the guard decides how many
    requests are in flight); the environment (proxies, netrc) is read once by ``proxy_for``, not per request."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=ssl_context()), trust_env=False)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (HTTPS_PROXY, NO_PROXY, ...), as requests reads it."""
    proxies = requests.utils.get_environ_proxies(url)
    scheme = url.partition(":")[0].lower()
    return proxies.get(scheme) or proxies.get("all")


def basic_auth(user: str, password: str) -> str:
    """An Authorization header's value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
