"""A fake SendGrid v3 mail API: ``POST /v3/mail/send`` with the real validation and answers.

Bearer auth; 1-1000 personalizations and at most 1000 recipients in all;
202 with an empty body and ``X-Message-Id``; errors as
``{"errors": [{"message", "field", "help"}]}``; 429 with the X-RateLimit
headers. Failures can be scripted.
"""

from __future__ import annotations

import collections
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer, Request, Response


@dataclass
class Failure:
    status: int
    message: str = "Scripted failure"
    accept: bool = False


def errors(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"errors": [{"message": message, "field": field, "help": None}]}, headers)


class FakeSendGrid(FakeServer):
    def __init__(self, api_key: str = "SG.test-key", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.sends: list[dict[str, Any]] = []  # accepted requests
        self.script: collections.deque[Failure] = collections.deque()
        self.route("POST", "/v3/mail/send", self._send)

    def fail_next(self, failure: Failure, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(failure)

    def recipients(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(
                to["email"] for send in self.sends for p in send["personalizations"] for to in p["to"]
            )

    def delivery_ids(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(
                p.get("custom_args", {}).get("delivery_id") for send in self.sends for p in send["personalizations"]
            )

    def too_many(self, request: Request) -> Response:
        reset = str(int(time.time()) + 1)
        return errors(
            429,
            "too many requests",
            headers={"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        )

    def _send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return errors(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            payload = request.json()
        except ValueError:
            return errors(400, "Bad Request", None)
        problem = _validate(payload)
        if problem:
            return errors(400, problem[1], problem[0])
        with self.lock:
            failure = self.script.popleft() if self.script else None
        if failure is not None and not failure.accept:
            return errors(failure.status, failure.message)
        message_id = secrets.token_urlsafe(16)[:22]
        with self.lock:
            self.sends.append({**payload, "_message_id": message_id, "_at": time.time()})
        if failure is not None:
            return errors(failure.status, failure.message)
        return Response(202, b"", {"X-Message-Id": message_id})


def _validate(payload: Any) -> tuple[str, str] | None:
    if not isinstance(payload, dict):
        return None, "Bad Request"  # type: ignore[return-value]
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        return "personalizations", "The personalizations field is required and must have at least one personalization."
    total = 0
    for p in personalizations:
        to = p.get("to") or []
        if not to:
            return "personalizations.to", "The to array is required for all personalization objects"
        emails = [t.get("email") for t in to]
        if len(set(emails)) != len(emails):
            return "personalizations.to", "Each email address in the personalization block should be unique"
        total += len(to)
        for value in (p.get("custom_args") or {}).values():
            if not isinstance(value, str):
                return "personalizations.custom_args", "custom_args values must be strings"
    if total > 1000:
        return "personalizations", "The total number of recipients must be less than 1000"
    if not (payload.get("from") or {}).get("email"):
        return "from.email", "The from object must be provided for every email send."
    if not payload.get("subject") and not all(p.get("subject") for p in personalizations):
        return "subject", "The subject is required."
    if not payload.get("content") and not payload.get("template_id"):
        return "content", "Unless a valid template_id is provided, the content parameter is required."
    return None
