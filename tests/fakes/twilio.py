"""A fake Twilio REST API speaking the real wire format (2010-04-01 Messages).

Form-encoded POSTs with Basic auth; 201 with a message resource (``SM`` +
32 hex sid); errors as ``{"code", "message", "more_info", "status"}``;
429 / 20429 with Retry-After when over its concurrency cap; list with the
page envelope the SDK expects. Failures can be scripted per request, per
number, or at random (seeded) for fault tests.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import random
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Failure:
    status: int
    code: int | None = None
    message: str = "Scripted failure"
    retry_after: float | None = None
    accept: bool = False  # store the message anyway (the answer is lost, the SMS is not)


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
        base = f"/2010-04-01/Accounts/{account_sid}"
        self.route("POST", f"{base}/Messages.json", self._create)
        self.route("GET", f"{base}/Messages.json", self._list)

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
