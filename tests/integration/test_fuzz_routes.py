"""Every route, with the odd input the review sent, answers a 4xx or better: never a 500 (issue 11, item 7).

The routes come from the Flask url_map, so a route added later is fuzzed
without anyone editing this file. Each is called as an admin (a session for the
console, a bearer token for the API), webhooks correctly signed so the input
reaches their parsers, and every GET anonymously too, on SQLite and on
PostgreSQL (which refuses NUL in text and checks column lengths). The input:
NUL, lone surrogates (as JSON escapes and as raw bytes), dates before the first
UTC time, names url_for() takes for itself (``endpoint``, ``_method``), very
long and very large values, form fields sent as file parts, JSON nested far
beyond anything real, and an oversized signal ``ttl``. The set is fixed, so the
test is bounded: about 2,000 requests per database.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from failover.channels import sendgrid_events
from failover.engine import notices, tokens
from failover.runtime import Runtime
from failover.sources.signals import sign
from tests.conftest import AuthActions, csrf_from
from tests.fakes.twilio import twilio_signature

PUBLIC_URL = "https://failover.example.org"
SIGNALS_SECRET = "fuzz-signals-secret"
TWILIO_SID, TWILIO_TOKEN = "AC" + "f" * 32, "fuzz-twilio-token"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())

# Query parameters: what views read, plus the names url_for() reserves for itself.
NAMES = (
    "since", "until", "actor", "action", "incident", "before", "format", "limit", "state", "next", "source",
    "delivery", "incident_id", "before_id", "endpoint", "_method", "_external", "_anchor",
)  # fmt: skip
# Values, already percent-encoded (raw bytes that are no UTF-8 cannot be passed any other way).
ODD_QUERY = {
    "NUL": quote("a\x00b"),
    "before the first UTC time": quote("0001-01-01T00:00:00+23:59"),
    "lone surrogate bytes": "%ED%A0%80",
    "5,000 characters": "x" * 5000,
    "30 digits": "9" * 30,
    "a method": "POST",
}
# Every field name any form or JSON body reads.
FIELDS = (
    "username", "password", "code", "runbook", "runbooks", "services", "other_services", "reason", "override",
    "drill", "confirm", "fingerprint", "note", "title", "body", "severity", "incident_id", "current", "new",
    "repeat", "role", "action", "name", "days", "service", "dry_run", "MessageSid", "MessageStatus", "CallSid",
    "CallStatus", "From", "To", "Body", "Digits", "ErrorCode",
)  # fmt: skip


def json_bodies() -> dict[str, Any]:
    """Raw JSON texts (so lone surrogates stay escapes) and what they exercise."""
    signal = {"service": "Exchange Online", "status": "failing", "check": "fuzz"}
    return {
        "nested 50,000 deep": "[" * 50_000 + "]" * 50_000,
        "objects nested 40 deep": '{"a":' * 40 + "1" + "}" * 40,
        "lone surrogates": json.dumps({f: "\ud800" for f in FIELDS}),
        "NUL": json.dumps({f: "a\x00b" for f in FIELDS}),
        "huge numbers": json.dumps({f: 10**40 for f in FIELDS}),
        "a list": json.dumps([{f: "x" for f in FIELDS}]),
        "signal with a surrogate": json.dumps({"source": "fuzz", "signals": [{**signal, "summary": "\udfff"}]}),
        "signal with an oversized ttl": json.dumps({"source": "fuzz", "signals": [{**signal, "ttl": "9" * 15 + "d"}]}),
        "alerts with odd labels": json.dumps(
            {
                "version": "4",
                "alerts": [
                    {"status": "firing", "labels": {"service": "Exchange Online", "\ud800": "x" * 5000}},
                    {"status": "firing", "labels": {"service": "Exchange Online"}, "fingerprint": "f" * 500},
                ],
            }
        ),
        "events with odd ids": json.dumps([{"event": "delivered", "delivery_id": "²", "sg_event_id": "x" * 500}]),
    }


@pytest.fixture
def fuzz_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    der = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    values = {
        "FAILOVER_PUBLIC_URL": PUBLIC_URL,
        "FAILOVER_SIGNALS_SECRET": SIGNALS_SECRET,
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": "+12025550100",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(der).decode(),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**env, **values}


@pytest.fixture
def world(fuzz_env: dict[str, str], app: Flask, runtime: Runtime) -> Iterator[dict[str, Any]]:
    """Incident, activation and notice 1; an admin session and an admin token."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a bug must show as the 500 a user would get
    runtime.activations.activate(runbook_id="m365-suite-outage", reason="seed", actor="seed")
    admin = app.test_client()
    AuthActions(admin, runtime).login("admin")
    with runtime.database.transaction() as session:
        notices.post(session, title="Seeded", body="A notice.", severity="minor", actor="seed")
        _, bearer = tokens.create(session, name="fuzz", role="admin", days=1, actor="seed", owner="admin")
    yield {"admin": admin, "anonymous": app.test_client(), "bearer": bearer}


def path_of(rule: Rule) -> str:
    """The rule with every variable filled: ids are 1 (seeded), paths a real static file."""
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: "console.css" if m.group(1) == "path" else "1", rule.rule)


class Fuzzer:
    def __init__(self, world: dict[str, Any]) -> None:
        self.world = world
        self.failures: list[str] = []
        self.sent = 0
        self.csrf = csrf_from(world["admin"].get("/account").get_data(as_text=True))

    def call(self, who: str, method: str, path: str, what: str, **kwargs: Any) -> None:
        client: FlaskClient = self.world[who]
        headers = dict(kwargs.pop("headers", {}))
        if who == "admin" and path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.world['bearer']}"
        response = client.open(path, method=method, headers=headers, **kwargs)
        body = response.get_data()
        response.close()
        self.sent += 1
        if response.status_code >= 500 or (response.status_code >= 400 and not body.strip()):
            self.failures.append(f"{response.status_code} {method} {path[:90]} as {who} ({what}): {body[:160]!r}")

    def query(self, who: str, method: str, path: str) -> None:
        data = {"csrf_token": self.csrf} if method != "GET" and not path.startswith("/api/") else None
        for what, value in ODD_QUERY.items():  # every name at once with one odd value...
            self.call(who, method, f"{path}?" + "&".join(f"{n}={value}" for n in NAMES), what, data=data)
        if who == "admin":  # ... and each name alone, so no early 400 hides a later problem
            for name in NAMES:
                self.call(who, method, f"{path}?{name}=x", f"?{name}=x", data=data)
            self.call(who, method, f"{path}?since={ODD_QUERY['before the first UTC time']}", "since alone", data=data)

    def forms(self, method: str, path: str) -> None:
        base = {} if path.startswith(("/api/", "/webhooks/")) else {"csrf_token": self.csrf}
        cases: dict[str, Any] = {
            "NUL in every field": {f: "a\x00b" for f in FIELDS},
            "20,000 characters in every field": {f: "x" * 20_000 for f in FIELDS},
            "every field a file part": {f: (io.BytesIO(b"x"), "x.txt") for f in FIELDS},
        }
        for what, fields in cases.items():
            data = {**base, **fields}
            headers = self.twilio_headers(path, data) if "file" not in what else {}
            self.call("admin", method, path, what, data=data, headers=headers)
        raw = "&".join(f"{f}=%ED%A0%80" for f in FIELDS) + f"&csrf_token={self.csrf}"
        content = "application/x-www-form-urlencoded"
        self.call("admin", method, path, "lone surrogate bytes", data=raw, content_type=content)

    def twilio_headers(self, path: str, data: dict[str, Any]) -> dict[str, str]:
        if not path.startswith("/webhooks/twilio/"):
            return {}
        return {"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, PUBLIC_URL + path, data)}

    def json(self, method: str, path: str) -> None:
        for what, text in json_bodies().items():
            raw = text.encode("utf-8", "surrogatepass")
            headers = {"Content-Type": "application/json"}
            if path == "/webhooks/signals":
                headers["X-Failover-Signature"] = sign(raw, SIGNALS_SECRET)
            if path == "/webhooks/sendgrid/events":
                stamp = str(int(time.time()))
                signature = SENDGRID_KEY.sign(stamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
                headers[sendgrid_events.SIGNATURE_HEADER] = base64.b64encode(signature).decode()
                headers[sendgrid_events.TIMESTAMP_HEADER] = stamp
            self.call("admin", method, path, what, data=raw, headers=headers)


@pytest.mark.timeout(600)
def test_every_route_answers_odd_input_without_a_500(world: dict[str, Any], app: Flask) -> None:
    fuzzer = Fuzzer(world)
    routes = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    for rule in routes:
        path = path_of(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if rule.endpoint == "account.logout":  # it would end the admin's session: anonymous only
                fuzzer.query("anonymous", method, path)
                continue
            if method == "GET":
                fuzzer.query("anonymous", method, path)
            fuzzer.query("admin", method, path)
            if method in ("POST", "PUT", "PATCH"):
                fuzzer.forms(method, path)
                fuzzer.json(method, path)
    assert fuzzer.sent > 1000 and len(routes) >= 50  # the map was really walked
    assert not fuzzer.failures, f"{len(fuzzer.failures)} of {fuzzer.sent} requests failed:\n" + "\n".join(
        fuzzer.failures
    )
