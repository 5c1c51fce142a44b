"""Doctor's Graph checks: a token through msal against the fake Entra ID, its roles claim, the secret's end date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.domain.readiness import Result
from failover.sources import graph_readiness
from failover.sources.graph import GraphClient
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, FakeEntra, FakeGraph
from tests.fakes.tls import TestCA

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntra]:
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))
    with FakeEntra(ssl_context=ca.server_context()) as fake:
        yield fake  # type: ignore[misc]


def client(entra: FakeEntra, secret: str = CLIENT_SECRET) -> GraphClient:
    return GraphClient(
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret=secret,
        api_base="https://127.0.0.1:1",
        authority_base=entra.url,
        max_retry_wait=0,
    )


def run(entra: FakeEntra, **kwargs: object) -> dict[str, graph_readiness.Finding]:
    graph = client(entra, **kwargs)  # type: ignore[arg-type]
    try:
        findings = graph_readiness.check(graph, secret_expires=dt.date(2027, 6, 30), now=NOW)
    finally:
        graph.close()
    return {f.check: f for f in findings}


def test_graph_good(entra: FakeEntra) -> None:
    found = run(entra)
    assert {k: f.result for k, f in found.items()} == {
        "graph.token": Result.OK,
        "graph.permissions": Result.OK,
        "graph.secret": Result.OK,
    }
    assert entra.token_requests() == 1


def test_graph_wrong_secret(entra: FakeEntra) -> None:
    found = run(entra, secret="expired~secret")
    assert found["graph.token"].result == Result.FAIL
    assert "invalid_client" in found["graph.token"].detail and "rotated" in found["graph.token"].fix
    assert "graph.permissions" not in found


def test_graph_without_service_health_consent(entra: FakeEntra) -> None:
    entra.roles = ["User.Read.All"]
    finding = run(entra)["graph.permissions"]
    assert finding.result == Result.FAIL
    assert "ServiceHealth.Read.All" in finding.detail and "admin consent" in finding.fix


def test_user_read_all_needed_only_when_people_are_synced(entra: FakeEntra) -> None:
    graph = client(entra)
    try:
        findings = graph_readiness.check(graph, secret_expires=None, now=NOW, need_users=True)
    finally:
        graph.close()
    found = {f.check: f for f in findings}
    assert found["graph.permissions"].result == Result.FAIL and "User.Read.All" in found["graph.permissions"].detail
    assert found["graph.secret"].result == Result.SKIPPED


@pytest.mark.parametrize(
    ("expires", "expected"),
    [(dt.date(2027, 1, 10), Result.OK), (dt.date(2026, 12, 20), Result.WARN), (dt.date(2026, 12, 1), Result.FAIL)],
)
def test_graph_secret_expiry(expires: dt.date, expected: Result) -> None:
    finding = graph_readiness._secret(expires, NOW)
    assert finding.result == expected


def test_graph_not_configured_is_skipped() -> None:
    (finding,) = graph_readiness.check(None, secret_expires=None, now=NOW)
    assert finding.result == Result.SKIPPED and "FAILOVER_GRAPH_TENANT_ID" in finding.fix


def test_roles_of_a_token_that_is_no_jwt() -> None:
    assert graph_readiness.roles("opaque-token") is None
    assert graph_readiness.roles("a.!!!.c") is None


def test_graph_secret_expiry_from_the_app_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = TestCA(tmp_path / "ca2")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))
    with FakeEntra(ssl_context=ca.server_context()) as entra:
        with FakeGraph(entra, ssl_context=ca.server_context()) as graph:
            entra.roles = ["ServiceHealth.Read.All", "Application.Read.All"]
            graph.add_secret(CLIENT_SECRET[:3], "2026-12-20T10:00:00Z")  # the one in use: ends in 16 days and a bit
            graph.add_secret("zz9", "2028-01-01T00:00:00Z")  # another, unused secret
            client = GraphClient(
                tenant_id=TENANT,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                api_base=graph.url,
                authority_base=entra.url,
                max_retry_wait=0,
            )
            try:
                findings = graph_readiness.check(client, secret_expires=None, now=NOW, secret_hint=CLIENT_SECRET[:3])
            finally:
                client.close()
            assert graph.requests("GET", "/v1.0/applications(appId=")
    finding = {f.check: f for f in findings}["graph.secret"]
    assert finding.result == Result.WARN
    assert finding.detail == "expires on 2026-12-20 (in 16 days) (from the app registration)"
