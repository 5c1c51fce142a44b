"""The route x role matrix: every route, tried anonymously and with each role, answers the expected status.

Console routes are tried with a logged-in session, API routes with a bearer
token of each role. Requests that an allowed role may make carry harmless
input (an unknown id, an empty form), so the matrix changes nothing and an
allowed cell answers 400 / 404 where a refused one answers 302 / 401 / 403.

``test_every_route_is_in_the_matrix`` fails when a route is added without a
row here: decide who may use it (see failover/web/access.py), then add it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from failover.engine import notices, tokens
from failover.runtime import Runtime
from tests.conftest import AuthActions, csrf_from

ROLES = ("anonymous", "viewer", "operator", "admin")
HTML_ANON, JSON_ANON = 302, 401
LONG_NOTE = "x" * 501


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: access control does not depend on the database, and the matrix is long."""
    yield f"sqlite:///{tmp_path / 'failover.db'}"


def everyone(status: int) -> tuple[int, int, int, int]:
    return (status, status, status, status)


def signed_in(viewer: int, operator: int, admin: int, anonymous: int = HTML_ANON) -> tuple[int, int, int, int]:
    return (anonymous, viewer, operator, admin)


V_200 = signed_in(200, 200, 200)
# method, path, form or JSON body, expected status for (anonymous, viewer, operator, admin)
CONSOLE: list[tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]] = [
    ("GET", "/healthz", None, everyone(200)),
    ("GET", "/readyz", None, everyone(200)),
    ("GET", "/metrics", None, everyone(404)),  # no FAILOVER_METRICS_TOKEN: no metrics, whoever asks
    ("GET", "/status", None, everyone(200)),
    ("GET", "/status.json", None, everyone(200)),
    ("GET", "/status/feed.atom", None, everyone(200)),
    ("GET", "/static/console.css", None, everyone(200)),
    ("GET", "/login", None, (200, 302, 302, 302)),
    ("POST", "/login", {}, everyone(400)),
    ("GET", "/login/totp", None, everyone(302)),
    ("POST", "/login/totp", {}, everyone(302)),
    ("GET", "/", None, V_200),
    ("GET", "/activate", None, signed_in(403, 200, 200)),
    ("POST", "/activate", {"runbook": "exchange-outage", "reason": ""}, signed_in(403, 400, 400)),
    ("GET", "/activations/1", None, V_200),
    ("GET", "/activations/1.json", None, signed_in(200, 200, 200, JSON_ANON)),
    ("GET", "/activations/1/roster.json", None, signed_in(200, 200, 200, JSON_ANON)),
    ("GET", "/activations/1/live.json", None, signed_in(200, 200, 200, JSON_ANON)),
    ("GET", "/activations/1/roster.csv", None, V_200),
    ("GET", "/activations/1/report", None, V_200),
    ("GET", "/activations/1/report.pdf", None, V_200),
    ("GET", "/drills", None, V_200),
    ("GET", "/activations/1/polls/steps.0.csv", None, signed_in(404, 404, 404)),  # that step asks no poll
    ("POST", "/activations/999/polls/steps.0/close", {}, signed_in(403, 404, 404)),
    ("POST", "/status/report", {"service": "Yammer"}, everyone(400)),  # public; a service nobody watches
    ("POST", "/activations/999/approve", {}, signed_in(403, 404, 404)),
    ("POST", "/activations/999/cancel", {}, signed_in(403, 404, 404)),
    ("POST", "/activations/999/acknowledge", {"person": "bob"}, signed_in(403, 404, 404)),
    ("POST", "/activations/999/escalation", {"action": "pause"}, signed_in(403, 404, 404)),
    ("GET", "/incidents", None, V_200),
    ("GET", "/incidents/1", None, V_200),
    ("GET", "/incidents/1/resolve", None, signed_in(403, 200, 200)),
    ("POST", "/incidents/1/resolve", {"note": LONG_NOTE}, signed_in(403, 400, 400)),
    ("GET", "/incidents/1/runbooks", None, signed_in(403, 200, 200)),
    ("POST", "/incidents/1/runbooks", {"runbook": "teams-outage", "reason": ""}, signed_in(403, 400, 400)),
    ("GET", "/incidents/1/update", None, signed_in(403, 200, 200)),
    ("POST", "/incidents/1/update", {"text": ""}, signed_in(403, 400, 400)),
    ("GET", "/outbox", None, V_200),
    ("POST", "/watch/confirm", {"service": "Exchange Online", "reason": ""}, signed_in(403, 400, 400)),
    ("GET", "/notices", None, V_200),
    ("GET", "/notices/new", None, signed_in(403, 200, 200)),
    ("POST", "/notices/new", {}, signed_in(403, 400, 400)),
    ("GET", "/notices/1/edit", None, signed_in(403, 200, 200)),
    ("POST", "/notices/1/edit", {}, signed_in(403, 400, 400)),
    ("POST", "/notices/999/close", {}, signed_in(403, 404, 404)),
    ("GET", "/audit", None, V_200),
    ("GET", "/audit?format=csv", None, V_200),
    ("GET", "/account", None, V_200),
    ("POST", "/account/password", {}, signed_in(400, 400, 400)),
    ("GET", "/account/totp", None, V_200),
    ("POST", "/account/totp", {}, signed_in(400, 400, 400)),
    ("POST", "/account/totp/disable", {}, signed_in(400, 400, 400)),
    ("GET", "/admin/users", None, signed_in(403, 403, 200)),
    ("POST", "/admin/users", {}, signed_in(403, 403, 400)),
    ("POST", "/admin/users/999", {"action": "enable"}, signed_in(403, 403, 400)),
    ("GET", "/admin/tokens", None, signed_in(403, 403, 200)),
    ("POST", "/admin/tokens", {}, signed_in(403, 403, 400)),
    ("POST", "/admin/tokens/999/revoke", {}, signed_in(403, 403, 404)),
    ("GET", "/admin/readiness", None, signed_in(403, 403, 200)),
    ("POST", "/admin/readiness/canaries", {}, signed_in(403, 403, 302)),  # no targets: says so, sends nothing
    ("GET", "/people", None, V_200),
    ("GET", "/people/person/nobody", None, signed_in(404, 404, 404)),
    ("POST", "/people/import", {}, signed_in(403, 403, 400)),
    ("POST", "/people/import/confirm", {}, signed_in(403, 403, 400)),
    ("POST", "/people/verify", {"group": "no-such-group"}, signed_in(403, 403, 400)),
    ("POST", "/people/sync", {}, signed_in(403, 403, 400)),  # no graph source configured
    ("POST", "/people/invite", {"group": "no-such-group"}, signed_in(403, 403, 400)),
    ("GET", "/me/not-a-link", None, everyone(404)),  # public: the personal link is the credential
    ("POST", "/me/not-a-link", {}, everyone(404)),
    ("POST", "/me/not-a-link/confirm", {}, everyone(404)),
    # The public status page (issue 14) and its console.
    ("GET", "/status/feed.rss", None, everyone(200)),
    ("GET", "/status/components/exchange-online/feed.atom", None, everyone(200)),
    ("GET", "/status/badge.svg", None, everyone(200)),
    ("GET", "/status/status.js", None, everyone(200)),
    ("GET", "/api/v2/summary.json", None, everyone(200)),
    ("GET", "/status/subscribe", None, everyone(200)),
    ("POST", "/status/subscribe", {"kind": "email", "address": ""}, everyone(400)),
    ("GET", "/status/confirm/1-forged", None, everyone(200)),
    ("POST", "/status/confirm/1-forged", {}, everyone(404)),
    ("GET", "/status/unsubscribe/1-forged", None, everyone(200)),
    ("POST", "/status/unsubscribe/1-forged", {}, everyone(404)),
    ("GET", "/statuspage", None, V_200),
    ("POST", "/statuspage/post", {"title": "", "body": ""}, signed_in(403, 400, 400)),
    ("GET", "/statuspage/subscribers", None, signed_in(403, 403, 200)),
    ("POST", "/statuspage/subscribers/999/remove", {}, signed_in(403, 403, 404)),
    ("POST", "/statuspage/webhooks", {"url": "ftp://x"}, signed_in(403, 403, 400)),
    ("POST", "/logout", {}, everyone(302)),  # last: it ends the session
]

A_200 = signed_in(200, 200, 200, JSON_ANON)
A_OPERATOR_404 = signed_in(403, 404, 404, JSON_ANON)
API: list[tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]] = [
    ("GET", "/api/v1/openapi.json", None, A_200),
    ("GET", "/api/v1/runbooks", None, A_200),
    ("GET", "/api/v1/incidents", None, A_200),
    ("GET", "/api/v1/incidents/1", None, A_200),
    ("POST", "/api/v1/incidents/999/resolve", {}, A_OPERATOR_404),
    ("GET", "/api/v1/activations", None, A_200),
    ("POST", "/api/v1/activations", {}, signed_in(403, 400, 400, JSON_ANON)),
    ("GET", "/api/v1/activations/1", None, A_200),
    ("POST", "/api/v1/activations/999/approve", None, A_OPERATOR_404),
    ("POST", "/api/v1/activations/999/cancel", None, A_OPERATOR_404),
    ("GET", "/api/v1/notices", None, A_200),
    ("POST", "/api/v1/notices", {}, signed_in(403, 400, 400, JSON_ANON)),
    ("GET", "/api/v1/notices/1", None, A_200),
    ("PATCH", "/api/v1/notices/999", {"title": "t"}, A_OPERATOR_404),
    ("POST", "/api/v1/notices/999/close", None, A_OPERATOR_404),
    ("GET", "/api/v1/audit", None, A_200),
    ("GET", "/api/v1/audit/verify", None, A_200),
    ("POST", "/api/v1/status/incidents", {}, signed_in(403, 400, 400, JSON_ANON)),
    ("POST", "/api/v1/status/maintenances", {}, signed_in(403, 400, 400, JSON_ANON)),
    ("POST", "/api/v1/status/incidents/999/updates", {"status": "resolved", "body": "x"}, A_OPERATOR_404),
    ("GET", "/api/v1/status/subscribers", None, signed_in(403, 403, 200, JSON_ANON)),
]


@pytest.fixture
def world(app: Flask, runtime: Runtime) -> dict[str, Any]:
    """Incident 1 with activation 1 awaiting approval, notice 1, a client and a token per role."""
    runtime.activations.activate(runbook_id="m365-suite-outage", reason="seed", actor="seed")
    clients: dict[str, FlaskClient] = {}
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            AuthActions(client, runtime).login(role)  # creates the user "viewer", "operator", "admin"
        clients[role] = client
    with runtime.database.transaction() as session:
        notices.post(session, title="Seeded", body="A notice.", severity="minor", actor="seed")
        bearer = {
            role: tokens.create(session, name=f"{role}-token", role=role, days=1, actor="seed", owner=role)[1]
            for role in ROLES[1:]
        }
    return {"clients": clients, "bearer": bearer}


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login")
    if page.status_code == 302:  # logged in: any page of the console carries the token
        page = client.get("/account")
    return csrf_from(page.get_data(as_text=True))


def call(client: FlaskClient, method: str, path: str, data: dict[str, Any] | None, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    if path.startswith("/api/"):
        response = client.open(path, method=method, json=data, headers=headers)
    elif method == "GET":
        response = client.get(path)
    else:
        # Every form gets a valid CSRF token, so that access control, not CSRF, decides the cell.
        response = client.open(path, method=method, data={"csrf_token": csrf_token(client), **(data or {})})
    response.get_data()
    response.close()  # static files are streamed from an open file
    return response


def test_console_routes_by_role(world: dict[str, Any]) -> None:
    failures = []
    for method, path, data, expected in CONSOLE:
        for role, want in zip(ROLES, expected, strict=True):
            got = call(world["clients"][role], method, path, data, {}).status_code
            if got != want:
                failures.append(f"{method} {path} as {role}: {got}, expected {want}")
    assert not failures, "\n".join(failures)


def test_api_routes_by_role(world: dict[str, Any], app: Flask) -> None:
    failures = []
    client = app.test_client()  # no session: the token alone decides
    for method, path, data, expected in API:
        for role, want in zip(ROLES, expected, strict=True):
            headers = {} if role == "anonymous" else {"Authorization": f"Bearer {world['bearer'][role]}"}
            response = call(client, method, path, data, headers)
            if response.status_code != want:
                failures.append(f"{method} {path} as {role}: {response.status_code}, expected {want}")
            elif response.status_code >= 400:
                body = response.get_json(silent=True)
                if not (isinstance(body, dict) and body.get("status") == want and body.get("error")):
                    failures.append(f"{method} {path} as {role}: error is not JSON: {response.data[:80]!r}")
    assert not failures, "\n".join(failures)


def test_the_api_takes_the_console_session_for_reading_only(world: dict[str, Any]) -> None:
    viewer = world["clients"]["viewer"]
    assert viewer.get("/api/v1/incidents").status_code == 200
    operator = world["clients"]["operator"]
    refused = operator.post("/api/v1/notices", json={"title": "t", "body": "b"})
    assert refused.status_code == 401  # a cookie never authorises a change without CSRF protection


@pytest.mark.parametrize(
    "header",
    ["Bearer fo_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", "fo_missing-scheme"],
)
def test_bad_or_expired_tokens_are_401(world: dict[str, Any], app: Flask, runtime: Runtime, header: str) -> None:
    response = app.test_client().get("/api/v1/incidents", headers={"Authorization": header})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_stop_working(world: dict[str, Any], app: Flask, runtime: Runtime) -> None:
    import datetime as dt

    from freezegun import freeze_time

    client = app.test_client()
    headers = {"Authorization": f"Bearer {world['bearer']['viewer']}"}
    assert client.get("/api/v1/incidents", headers=headers).status_code == 200
    with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
        assert client.get("/api/v1/incidents", headers=headers).status_code == 401
    with runtime.database.transaction() as session:
        token_id = next(t["id"] for t in tokens.list_tokens(session) if t["name"] == "viewer-token")
        tokens.revoke(session, token_id=token_id, actor="admin")
    assert client.get("/api/v1/incidents", headers=headers).status_code == 401


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    adapter = app.url_map.bind("localhost")
    covered = set()
    for method, path, _, _ in CONSOLE + API:
        endpoint, _ = adapter.match(path.split("?")[0], method=method)
        covered.add((endpoint, method))
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/webhooks/"):
            continue  # public by design, authenticated by the providers' signatures (their own tests)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in covered:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, "routes without a row in the access matrix:\n" + "\n".join(missing)


def test_a_route_that_declares_no_role_is_refused_to_everyone(app: Flask, runtime: Runtime) -> None:
    @app.get("/forgotten")
    def forgotten():  # type: ignore[no-untyped-def]
        return "should never be served"

    client = app.test_client()
    AuthActions(client, runtime).login("admin")
    response = client.get("/forgotten")
    assert response.status_code == 403 and b"declares no access rule" in response.data
