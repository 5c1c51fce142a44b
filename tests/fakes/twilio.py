"""A fake Twilio REST API speaking the real wire format (2010-04-01 Messages and Calls).

Form-encoded POSTs with Basic auth; 201 with a message resource (``SM`` +
32 hex sid) or a call resource (``CA`` + 32 hex); errors as ``{"code",
"message", "more_info", "status"}``; 429 / 20429 with Retry-After when over
its concurrency cap; list with the page envelope the SDK expects. Failures
can be scripted per request, per number, or at random (seeded) for fault tests.

It also calls back the way Twilio does: form POSTs to a message's
``StatusCallback`` (``sent``, then ``delivered`` or ``undelivered`` with an
``ErrorCode``), to our inbound-SMS webhook, and to a call's status callback and
``<Gather action>``, each signed with ``X-Twilio-Signature`` = base64
HMAC-SHA1(auth token, URL + every parameter name and value in sorted order),
computed here independently of the SDK. ``poster`` decides how a callback
travels: real HTTP by default, or a Flask test client.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import hashlib
import hmac
import random
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.fakes.server import FakeServer, Request, Response

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Failure:
    status: int
    code: int | None = None
    message: str = "Scripted failure"
    retry_after: float | None = None
    accept: bool = False  # store the message anyway (the answer is lost, the SMS is not)


# poster(url, form, headers) -> (HTTP status, body text)
Poster = Callable[[str, Mapping[str, str], Mapping[str, str]], tuple[int, str]]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Exactly how Twilio signs a webhook: the full URL, then each parameter name+value in name order."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def http_poster(url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> tuple[int, str]:
    response = requests.post(url, data=dict(form), headers=dict(headers), timeout=10)
    return response.status_code, response.text


def flask_poster(client: Any) -> Poster:
    """Deliver callbacks through a Flask test client (the URL's path and query; the host is the public one)."""

    def post(url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        response = client.post(target, data=dict(form), headers=dict(headers))
        return response.status_code, response.get_data(as_text=True)

    return post


def error(status: int, code: int | None, message: str, headers: dict[str, str] | None = None) -> Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }
    return Response.json(status, payload, headers)


class FakeTwilio(FakeServer):
    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",
        *,
        rate_per_second: float | None = None,
        seed: int = 7,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.script: collections.deque[Failure] = collections.deque()
        self.number_failures: dict[str, Failure] = {}
        self.chaos: list[tuple[float, Failure]] = []  # (probability, failure), checked in order
        self.rate_per_second = rate_per_second
        self.hold = 0.0  # seconds to sit on an answer after storing the message (the client may die meanwhile)
        self._window: collections.deque[float] = collections.deque()
        self._random = random.Random(seed)
        self.calls: list[dict[str, Any]] = []
        # Callbacks: how they travel, what each number's messages end as, and a record of every one posted.
        self.poster: Poster = http_poster
        self.outcomes: dict[str, tuple[str, int | None]] = {}  # number -> (final status, ErrorCode)
        self.auto_callbacks = False  # post receipts by themselves shortly after each message is created
        self.callback_delay = 0.05
        self.callbacks: list[tuple[str, dict[str, str], int]] = []  # (url, form, answer status)
        self._called_back: set[str] = set()
        base = f"/2010-04-01/Accounts/{account_sid}"
        self.route("POST", f"{base}/Messages.json", self._create)
        self.route("GET", f"{base}/Messages.json", self._list)
        self.route("POST", f"{base}/Calls.json", self._create_call)
        # Read-only account resources that `failover doctor` looks at (the account, its balance, its numbers,
        # Messaging Services: messaging.twilio.com/v1, served here too when the SDK's base URL points here).
        self.account_status = "active"  # active | suspended | closed
        self.account_type = "Full"  # Full | Trial
        self.balance = "42.17"
        self.currency = "USD"
        self.numbers: dict[str, dict[str, Any]] = {}  # phone number -> IncomingPhoneNumber resource
        self.services: dict[str, dict[str, Any]] = {}  # MG sid -> Messaging Service resource (+ "_numbers")
        self.route("GET", f"{base}.json", self._account)
        self.route("GET", f"{base}/Balance.json", self._balance)
        self.route("GET", f"{base}/IncomingPhoneNumbers.json", self._incoming_numbers)
        self.route("GET", "/v1/Services/", self._service)

    # -- helpers for tests -----------------------------------------------------

    def fail_next(self, failure: Failure, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(failure)

    def sent_to(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(m["to"] for m in self.messages)

    # -- routes --------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def too_many(self, request: Request) -> Response:
        return error(429, 20429, "Too Many Requests", {"Retry-After": "1"})

    def admit(self, request: Request) -> Response | None:
        # Twilio counts a request when it arrives, not when it has been processed.
        if request.method == "POST" and self.rate_per_second is not None and self._over_rate():
            return error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
        return None

    async def _create(self, request: Request) -> Response:
        response = self._create_now(request)
        if self.hold and response.status == 201:
            await asyncio.sleep(self.hold)
        return response

    def _create_now(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        form = request.form()
        to, body = form.get("To", ""), form.get("Body", "")
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not E164.match(to):
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        failure = self._failure_for(to)
        if failure is not None and not failure.accept:
            return self._failure_response(failure)
        message = self._store(form)
        if self.auto_callbacks and form.get("StatusCallback"):
            threading.Thread(target=self._auto_deliver, args=(message["sid"],), daemon=True).start()
        if failure is not None:  # accepted, but the client never hears so
            return self._failure_response(failure)
        return Response.json(201, message)

    def _failure_for(self, to: str) -> Failure | None:
        with self.lock:
            if self.script:
                return self.script.popleft()
            if to in self.number_failures:
                return self.number_failures[to]
            roll = self._random.random()
        for probability, failure in self.chaos:
            if roll < probability:
                return failure
            roll -= probability
        return None

    def _failure_response(self, failure: Failure) -> Response:
        headers = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after is not None else None
        return error(failure.status, failure.code, failure.message, headers)

    def _over_rate(self) -> bool:
        now = time.monotonic()
        with self.lock:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= (self.rate_per_second or 0):
                return True
            self._window.append(now)
            return False

    def _store(self, form: dict[str, str]) -> dict[str, Any]:
        now = email.utils.formatdate(usegmt=True)
        sid = "SM" + secrets.token_hex(16)
        body = form["Body"]
        message = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            # Not part of Twilio's resource; kept so tests can follow callbacks.
            "_status_callback": form.get("StatusCallback"),
            "_created": time.time(),
        }
        with self.lock:
            self.messages.append(message)
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _list(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        to = (request.query.get("To") or [None])[0]
        with self.lock:
            found = [
                {k: v for k, v in m.items() if not k.startswith("_")}
                for m in self.messages
                if to is None or m["to"] == to
            ]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return Response.json(
            200,
            {
                "messages": list(reversed(found))[:1000],
                "end": max(0, len(found) - 1),
                "first_page_uri": f"{uri}?PageSize=50&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    # -- account resources (read by failover doctor) ---------------------------------------

    def add_number(
        self, number: str, *, sms: bool = True, voice: bool = True, sms_url: str = "", status_callback: str = ""
    ) -> dict[str, Any]:
        """An IncomingPhoneNumber of this account, as Twilio answers it."""
        now = email.utils.formatdate(usegmt=True)
        sid = "PN" + secrets.token_hex(16)
        resource = {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": "2010-04-01",
            "beta": False,
            "capabilities": {"voice": voice, "sms": sms, "mms": sms, "fax": False},
            "date_created": now,
            "date_updated": now,
            "emergency_status": "Inactive",
            "friendly_name": number,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": number,
            "sid": sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": sms_url,
            "status_callback": status_callback,
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": "POST",
            "voice_url": None,
            "bundle_sid": None,
            "status": "in-use",
        }
        with self.lock:
            self.numbers[number] = resource
        return resource

    def add_service(
        self, numbers: list[str], *, inbound_request_url: str = "", use_inbound_webhook_on_number: bool = False
    ) -> str:
        """A Messaging Service (messaging/v1) with sender numbers; returns its MG sid."""
        sid = "MG" + secrets.token_hex(16)
        url = f"https://messaging.twilio.com/v1/Services/{sid}"
        service = {
            "account_sid": self.account_sid,
            "area_code_geomatch": True,
            "date_created": "2026-11-02T09:00:00Z",
            "date_updated": "2026-11-02T09:00:00Z",
            "fallback_method": "POST",
            "fallback_to_long_code": True,
            "fallback_url": None,
            "friendly_name": "failover",
            "inbound_method": "POST",
            "inbound_request_url": inbound_request_url or None,
            "links": {"phone_numbers": f"{url}/PhoneNumbers"},
            "mms_converter": True,
            "scan_message_content": "inherit",
            "sid": sid,
            "smart_encoding": True,
            "status_callback": None,
            "sticky_sender": True,
            "synchronous_validation": True,
            "url": url,
            "use_inbound_webhook_on_number": use_inbound_webhook_on_number,
            "usecase": "notifications",
            "us_app_to_person_registered": False,
            "validity_period": 14400,
            "_numbers": [
                {
                    "sid": "PN" + secrets.token_hex(16),
                    "account_sid": self.account_sid,
                    "service_sid": sid,
                    "date_created": "2026-11-02T09:00:00Z",
                    "date_updated": "2026-11-02T09:00:00Z",
                    "phone_number": number,
                    "country_code": "US",
                    "capabilities": ["SMS", "MMS", "Voice"],
                    "url": f"{url}/PhoneNumbers/PN{number[-6:]}",
                }
                for number in numbers
            ],
        }
        with self.lock:
            self.services[sid] = service
        return sid

    def _account(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        now = email.utils.formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}"
        return Response.json(
            200,
            {
                "auth_token": self.auth_token,
                "date_created": now,
                "date_updated": now,
                "friendly_name": "failover test account",
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": self.account_status,
                "subresource_uris": {"balance": f"{uri}/Balance.json", "messages": f"{uri}/Messages.json"},
                "type": self.account_type,
                "uri": f"{uri}.json",
            },
        )

    def _balance(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        return Response.json(200, {"account_sid": self.account_sid, "balance": self.balance, "currency": self.currency})

    def _incoming_numbers(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        wanted = (request.query.get("PhoneNumber") or [None])[0]
        with self.lock:
            found = [n for n in self.numbers.values() if wanted is None or n["phone_number"] == wanted]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"
        return Response.json(
            200,
            {
                "end": max(0, len(found) - 1),
                "first_page_uri": f"{uri}?PageSize=50&Page=0",
                "incoming_phone_numbers": found,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    def _service(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        parts = request.path.strip("/").split("/")  # v1 Services MG... [PhoneNumbers]
        with self.lock:
            service = self.services.get(parts[2]) if len(parts) >= 3 else None
        if service is None:
            return error(404, 20404, f"The requested resource {request.path} was not found")
        if len(parts) == 4 and parts[3] == "PhoneNumbers":
            url = f"{service['url']}/PhoneNumbers"
            meta = {
                "page": 0,
                "page_size": 50,
                "first_page_url": f"{url}?PageSize=50&Page=0",
                "previous_page_url": None,
                "next_page_url": None,
                "key": "phone_numbers",
                "url": f"{url}?PageSize=50&Page=0",
            }
            return Response.json(200, {"meta": meta, "phone_numbers": service["_numbers"]})
        return Response.json(200, {k: v for k, v in service.items() if not k.startswith("_")})

    # -- calls ------------------------------------------------------------------------

    def _create_call(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(401, 20003, "Authenticate")
        form = request.form()
        events = [v for k, vs in parse_multi(request.body).items() if k == "StatusCallbackEvent" for v in vs]
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return error(400, 21201, "No 'To' number is specified")
        if not sender:
            return error(400, 21213, "No 'From' number is specified")
        if not (form.get("Twiml") or form.get("Url") or form.get("ApplicationSid")):
            return error(400, 21205, "Url parameter is required.")
        if not E164.match(to):
            return error(400, 13224, f"The phone number you are attempting to call, {to}, is not valid.")
        failure = self._failure_for(to)
        if failure is not None and not failure.accept:
            return self._failure_response(failure)
        now = email.utils.formatdate(usegmt=True)
        sid = "CA" + secrets.token_hex(16)
        call = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "from": sender,
            "from_formatted": sender,
            "sid": sid,
            "status": "queued",
            "to": to,
            "to_formatted": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
            "_twiml": form.get("Twiml"),
            "_status_callback": form.get("StatusCallback"),
            "_events": events,
            "_timeout": form.get("Timeout"),
        }
        with self.lock:
            self.calls.append(call)
        return Response.json(201, {k: v for k, v in call.items() if not k.startswith("_")})

    def call(self, sid: str) -> dict[str, Any]:
        with self.lock:
            return next(c for c in self.calls if c["sid"] == sid)

    def gather_action(self, sid: str) -> str:
        """The ``<Gather action>`` URL of a call's TwiML."""
        root = ET.fromstring(self.call(sid)["_twiml"])
        gather = root.find("Gather")
        assert gather is not None, "the call's TwiML has no <Gather>"
        return gather.attrib["action"]

    def call_progress(self, sid: str, *statuses: str) -> list[int]:
        """Post a call's progress (initiated, ringing, in-progress, completed / no-answer...) to its callback."""
        call = self.call(sid)
        answers = []
        for number, status in enumerate(statuses):
            form = {**self._call_params(call), "CallStatus": status, "SequenceNumber": str(number)}
            form["Timestamp"] = email.utils.formatdate(usegmt=True)
            form["CallbackSource"] = "call-progress-events"
            if status == "completed":
                form["CallDuration"] = form["Duration"] = "12"
            answers.append(self.post_signed(call["_status_callback"], form)[0])
        return answers

    def press(self, sid: str, digits: str) -> tuple[int, str]:
        """The callee pressed ``digits``: Twilio posts them to the Gather action."""
        form = {**self._call_params(self.call(sid)), "CallStatus": "in-progress", "Digits": digits}
        form["FinishedOnKey"] = ""
        form["msg"] = "Gather End"
        return self.post_signed(self.gather_action(sid), form)

    def _call_params(self, call: dict[str, Any]) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call["sid"],
            "Called": call["to"],
            "Caller": call["from"],
            "Direction": "outbound-api",
            "From": call["from"],
            "To": call["to"],
            "ToCountry": "US",
            "ToState": "DC",
            "CalledCountry": "US",
            "FromCountry": "US",
        }

    # -- callbacks ---------------------------------------------------------------------

    def post_signed(self, url: str, form: Mapping[str, str], *, signature: str | None = None) -> tuple[int, str]:
        """POST a form to one of our webhooks, signed as Twilio signs it (or with the given signature)."""
        headers = {
            "X-Twilio-Signature": twilio_signature(self.auth_token, url, form) if signature is None else signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        status, text = self.poster(url, form, headers)
        with self.lock:
            self.callbacks.append((url, dict(form), status))
        return status, text

    def receipt_form(self, message: dict[str, Any], status: str, error_code: int | None = None) -> dict[str, str]:
        """A message status callback's parameters, as Twilio sends them."""
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or "",
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "SmsSid": message["sid"],
            "SmsStatus": status,
            "To": message["to"],
        }
        if message.get("messaging_service_sid"):
            form["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        if status == "delivered":
            form["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
        return form

    def deliver(self, *, only: str | None = None, reverse: bool = False) -> list[int]:
        """Call back every message not called back yet: ``sent``, then its outcome (``reverse``: out of order)."""
        with self.lock:
            pending = [m for m in self.messages if m["sid"] not in self._called_back and m.get("_status_callback")]
            pending = [m for m in pending if only is None or m["to"] == only]
            self._called_back.update(m["sid"] for m in pending)
        answers = []
        for message in pending:
            answers += self._post_receipts(message, reverse=reverse)
        return answers

    def _post_receipts(self, message: dict[str, Any], *, reverse: bool = False) -> list[int]:
        final, code = self.outcomes.get(message["to"], ("delivered", None))
        forms = [self.receipt_form(message, "sent"), self.receipt_form(message, final, code)]
        if reverse:
            forms.reverse()
        return [self.post_signed(message["_status_callback"], form)[0] for form in forms]

    def _auto_deliver(self, sid: str) -> None:
        time.sleep(self.callback_delay)
        with self.lock:
            message = next(m for m in self.messages if m["sid"] == sid)
            if sid in self._called_back:
                return
            self._called_back.add(sid)
        try:
            self._post_receipts(message)
        except requests.RequestException:
            pass  # like Twilio: a callback that cannot be delivered is not retried

    def inbound_form(self, sender: str, body: str, to: str) -> dict[str, str]:
        sid = "SM" + secrets.token_hex(16)
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "FromCity": "WASHINGTON",
            "FromCountry": "US",
            "FromState": "DC",
            "FromZip": "20001",
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
            "ToCity": "",
            "ToCountry": "US",
            "ToState": "DC",
            "ToZip": "",
        }

    # -- the bridge line: calls to our number and conference status callbacks --------------

    def incoming_call_form(self, sender: str, to: str, call_sid: str) -> dict[str, str]:
        """What Twilio posts to a number's voice URL when someone calls it."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": to,
            "Caller": sender,
            "Direction": "inbound",
            "From": sender,
            "FromCountry": "US",
            "To": to,
            "ToCountry": "US",
        }

    def call_in(self, url: str, sender: str, *, to: str = "+12025550100") -> tuple[str, int, str]:
        """Someone calls our number: (their CallSid, our answer's status, our TwiML)."""
        sid = "CA" + secrets.token_hex(16)
        status, twiml = self.post_signed(url, self.incoming_call_form(sender, to, sid))
        return sid, status, twiml

    def key_in(self, url: str, call_sid: str, sender: str, digits: str, *, to: str = "+12025550100") -> tuple[int, str]:
        """The caller keyed ``digits`` into a <Gather>: Twilio posts them to its action URL."""
        form = {**self.incoming_call_form(sender, to, call_sid), "CallStatus": "in-progress", "Digits": digits}
        form["FinishedOnKey"] = "#"
        return self.post_signed(url, form)

    def conference_callback(
        self,
        url: str,
        *,
        conference_sid: str,
        name: str,
        event: str,
        call_sid: str | None = None,
        sequence: int = 1,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """A conference status callback as Twilio posts it (no caller number: only the CallSid)."""
        form = {
            "AccountSid": self.account_sid,
            "ConferenceSid": conference_sid,
            "FriendlyName": name,
            "SequenceNumber": str(sequence),
            "StatusCallbackEvent": event,
            "Timestamp": email.utils.formatdate(usegmt=True),
        }
        if call_sid is not None:
            form.update(
                {
                    "CallSid": call_sid,
                    "Muted": "false",
                    "Hold": "false",
                    "Coaching": "false",
                    "EndConferenceOnExit": "false",
                    "StartConferenceOnEnter": "true",
                }
            )
        return self.post_signed(url, form, signature=signature)

    def send_inbound(self, url: str, sender: str, body: str, *, to: str = "+12025550100") -> tuple[int, str]:
        """Someone texts our number: Twilio posts it to the inbound webhook and relays our TwiML answer."""
        return self.post_signed(url, self.inbound_form(sender, body, to))


def parse_multi(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode(), keep_blank_values=True)
