"""SMS through the official vonage SDK (SMS API), the second SMS provider.

Each message carries ``client-ref`` = its ledger row and a ``callback`` URL, so
delivery receipts (``/webhooks/vonage/status``) find their row. The SMS API
answers HTTP 200 even when it refuses: the per-message ``status`` is what counts
(the SDK raises ``SmsError`` naming it), and it becomes a ledger code
``vonage-<status>`` that :mod:`failover.domain.providers` and this module classify.

Vonage has no API to look a message up: a request whose answer was lost cannot
be reconciled. ``find`` says so (:class:`NoLookup`); the dispatcher then waits
for a delivery receipt and, without one, hands the person to the step's
fallback channel instead of sending the SMS a second time.

On the send loop (``send_async``) the same form goes out as one aiohttp POST over
https (the CA bundle from the environment, as requests reads it) on a keep-alive
pool. For synchronous callers (inbound answers) the SDK: its HTTP client keeps
per-request state, so each thread gets its own; its own retry loop (which would
re-send a POST after a dropped connection) is switched off. Both paths share one
error mapping.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from failover.channels.base import (
    NoLookup,
    OutgoingMessage,
    Receipt,
    aiohttp_session,
    basic_auth,
    parse_retry_after,
    proxy_for,
    transport_failure,
)
from failover.domain import sms
from failover.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from failover.privacy import scrub

# Per-message status codes of the SMS API (https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms).
STATUS_TEXT = {
    1: "throttled",
    2: "missing parameters",
    3: "invalid parameters (number)",
    4: "invalid credentials",
    5: "internal error",
    6: "invalid message (unroutable)",
    7: "number barred",
    8: "partner account barred",
    9: "partner quota violation (no credit)",
    10: "too many existing binds",
    11: "account not enabled for HTTP",
    12: "message too long",
    14: "invalid signature",
    15: "invalid sender address",
    22: "invalid network code",
    23: "invalid callback URL",
    29: "non-whitelisted destination",
    32: "signature and API secret disallowed",
    33: "number de-activated",
}
# "Not now": the message was not taken, try again later (5, an internal error, counts as Vonage failing).
RETRYABLE = frozenset({1, 5, 10})
_STATUS = re.compile(r"error code (\d+)")


def vonage_code(status: int) -> str:
    return f"vonage-{status}"


def classify_status(status: int, text: str = "") -> RetryableDeliveryError | PermanentDeliveryError:
    """A non-zero per-message ``status`` as one of our two errors (never "maybe sent": Vonage refused it)."""
    reason = f"Vonage status {status}: {STATUS_TEXT.get(status, scrub(text, 200) or 'unknown')}"
    code = vonage_code(status)
    if status in RETRYABLE:
        return RetryableDeliveryError(reason, code=code, retry_after=1.0 if status == 1 else None)
    return PermanentDeliveryError(reason, code=code)


class VonageSMS:
    name = "sms"
    transport = "vonage"
    max_batch = 1  # the SMS API takes one recipient per request

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        sender: str,
        api_base: str,
        public_url: str,
        timeout: float = 15.0,
    ) -> None:
        self.sender = sender.lstrip("+")
        self.public_url = public_url
        # Requests go out with Basic auth (key:secret). The signature secret only verifies webhooks: vonage 4.9
        # signs every field of its SmsMessage model, the unset ones as "None", which it then does not send,
        # so a signed request could never match Vonage's own computation.
        self._auth = dict(api_key=api_key, api_secret=api_secret)
        parts = urlsplit(api_base)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError("FAILOVER_VONAGE_API_BASE must be https://host[:port] (the SDK speaks https only)")
        self.rest_host = parts.netloc
        self.timeout = max(1, round(timeout))
        self._local = threading.local()
        self._session: aiohttp.ClientSession | None = None
        self._sms_url = f"https://{self.rest_host}/sms/json"
        self._proxy = proxy_for(self._sms_url)

    def client(self) -> Vonage:
        client = getattr(self._local, "client", None)
        if client is None:
            options = HttpClientOptions(
                rest_host=self.rest_host, timeout=self.timeout, pool_connections=1, pool_maxsize=1, max_retries=0
            )
            client = self._local.client = Vonage(Auth(**self._auth), options)
        return client

    def status_callback(self) -> str | None:
        """Where receipts go; Vonage takes at most 100 characters, else the account's default applies."""
        url = f"{self.public_url}/webhooks/vonage/status"
        return url if len(url) <= 100 else None

    def warm(self) -> None:
        self.client()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        return [self._send_one(message) for message in messages]

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        raise NoLookup("Vonage has no message lookup: only a delivery receipt can confirm it")

    def answer(self, to: str, text: str) -> None:
        """An automatic answer to an inbound SMS (Vonage takes no reply in the webhook's response)."""
        self._send_one(OutgoingMessage(0, to, text))

    async def send_async(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        if self._session is None:
            self._session = aiohttp_session()
        return [await self._send_one_async(message) for message in messages]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _fields(self, message: OutgoingMessage) -> dict[str, Any]:
        fields: dict[str, Any] = {"to": message.to.lstrip("+"), "from_": self.sender, "text": message.body}
        if message.delivery_id:
            fields["client_ref"] = str(message.delivery_id)
            callback = self.status_callback()
            if callback:
                fields["callback"] = callback
                fields["status_report_req"] = True
        if sms.analyse(message.body).encoding != "GSM-7":
            fields["type"] = "unicode"
        return fields

    async def _send_one_async(self, message: OutgoingMessage) -> Receipt:
        assert self._session is not None
        form = {
            k: str(v) for k, v in SmsMessage(**self._fields(message)).model_dump(by_alias=True).items() if v is not None
        }
        try:
            async with self._session.post(
                self._sms_url,
                data=form,
                headers={"Authorization": basic_auth(self._auth["api_key"], self._auth["api_secret"])},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                proxy=self._proxy,
            ) as answer:
                if answer.status >= 400:
                    raise _http_error(answer.status, answer.headers.get("Retry-After"))
                text = await answer.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _network_failure(exc) from None
        try:
            sent = json.loads(text)["messages"][0]
            status = int(sent["status"])
            if status != 0:
                raise classify_status(status, str(sent.get("error-text", "")))
            return Receipt(message.delivery_id, str(sent["message-id"]))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise _unreadable(exc) from None

    def _send_one(self, message: OutgoingMessage) -> Receipt:
        client = self.client()
        try:
            answer = client.sms.send(SmsMessage(**self._fields(message)))
        except SmsError as exc:
            match = _STATUS.search(str(exc))
            status = int(match.group(1)) if match else 0
            raise classify_status(status, str(exc).partition(": ")[2]) from None
        except HttpRequestError as exc:
            raise _http_error(exc.response.status_code, exc.response.headers.get("Retry-After")) from None
        except requests.RequestException as exc:
            raise _network_failure(exc) from None
        except (KeyError, ValueError, TypeError) as exc:  # an answer that is not the SMS API's JSON
            raise _unreadable(exc) from None
        sent = answer.messages[0]
        return Receipt(message.delivery_id, str(sent.message_id))


def _network_failure(exc: BaseException) -> DeliveryError:
    failure = transport_failure(exc)
    if failure == "timeout":
        return RetryableDeliveryError("Vonage did not answer in time", code="timeout", maybe_sent=True)
    # Refused or dropped before an answer: treated as in doubt, as the SDK's requests cannot tell them apart.
    maybe_sent = failure in ("refused", "dropped")
    return RetryableDeliveryError(f"cannot reach Vonage: {type(exc).__name__}", code="network", maybe_sent=maybe_sent)


def _unreadable(exc: BaseException) -> DeliveryError:
    return RetryableDeliveryError(
        f"unreadable answer from Vonage: {type(exc).__name__}", code="bad_answer", maybe_sent=True
    )


def _http_error(status: int, retry_after: str | None) -> DeliveryError:
    detail = f"Vonage answered HTTP {status}"
    if status == 429:
        return RetryableDeliveryError(detail, code="429", retry_after=parse_retry_after(retry_after))
    if status == 401:
        return PermanentDeliveryError(detail + " (credentials refused)", code=vonage_code(4))
    if status == 503:
        return RetryableDeliveryError(detail, code="503", retry_after=parse_retry_after(retry_after))
    if status >= 500:
        return RetryableDeliveryError(detail, code=str(status), maybe_sent=True)
    return PermanentDeliveryError(detail, code=str(status))
