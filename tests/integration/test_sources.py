"""The sources against local fakes: msal + Graph over TLS with a test CA, SMTP (aiosmtpd), HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.domain.detection.signals import GraphSnapshot
from failover.sources import probes
from failover.sources.graph import GraphClient, GraphError, html_to_text, parse_issue, parse_time
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, FakeEntra, FakeGraph, issue
from tests.fakes.server import FakeServer, Response
from tests.fakes.smtp import OUTAGE_REPLY, FakeSMTP, SilentServer
from tests.fakes.tls import TestCA
from tests.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def microsoft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeEntra, FakeGraph]]:
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))  # how msal's and our requests trust the fake
    with (
        FakeEntra(ssl_context=ca.server_context()) as entra,
        FakeGraph(entra, ssl_context=ca.server_context()) as graph,
    ):  # type: ignore[union-attr]
        yield entra, graph  # type: ignore[misc]


def client_for(entra: FakeEntra, graph: FakeGraph, **kwargs: object) -> tuple[GraphClient, list[float]]:
    waits: list[float] = []
    client = GraphClient(
        tenant_id=TENANT,
        client_id=kwargs.pop("client_id", CLIENT_ID),  # type: ignore[arg-type]
        client_secret=kwargs.pop("client_secret", CLIENT_SECRET),  # type: ignore[arg-type]
        api_base=graph.url,
        authority_base=entra.url,
        timeout=5,
        sleep=waits.append,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, waits


def test_snapshot_follows_every_page_and_keeps_what_matters(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.page_size = 100
    old = [issue(f"EX{100000 + n}", status="serviceRestored", resolved=True) for n in range(230)]
    live = issue("EX226574", status="ServiceInterruption", classification="Incident")  # Microsoft's doc spelling
    graph.set_issues(*old, live)
    graph.set_overview("Exchange Online", "serviceInterruption")
    client, _ = client_for(entra, graph)
    try:
        snapshot = client.snapshot()
    finally:
        client.close()
    assert isinstance(snapshot, GraphSnapshot)
    assert len(snapshot.issues) == 231 and snapshot.requests == 4  # three pages of issues, one of overviews
    found = next(i for i in snapshot.issues if i.id == "EX226574")
    assert (found.status, found.classification, found.open) == ("serviceInterruption", "incident", True)
    assert found.impact and found.impact.startswith("Users may be unable")
    assert found.latest_post == "Title: Some users may be unable to send or receive email\n" + (
        "Current status: update 2. We're reviewing mailbox server logs."
    )
    assert snapshot.overviews["Exchange Online"] == "serviceInterruption"
    pages = [
        r.query.get("$skiptoken", ["0"])[0] for r in graph.requests("GET", "/v1.0/admin/serviceAnnouncement/issues")
    ]
    assert pages == ["0", "100", "200"]


def test_the_token_is_cached_between_polls(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    client, _ = client_for(entra, graph)
    try:
        client.snapshot()
        client.snapshot()
    finally:
        client.close()
    assert entra.token_requests() == 1
    assert len(entra.requests("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration")) == 1


def test_429_with_a_short_retry_after_is_waited_out(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.throttle_next(times=2, retry_after=2)
    client, waits = client_for(entra, graph)
    try:
        snapshot = client.snapshot()
    finally:
        client.close()
    assert waits == [2.0, 2.0] and snapshot.requests == 2


def test_a_long_retry_after_is_reported_as_throttled_not_as_an_outage(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.throttle_next(times=1, retry_after=120)
    client, waits = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert waits == []
    assert caught.value.failure.kind == "throttled" and caught.value.failure.retry_after == 120
    assert not caught.value.failure.votes


def test_503_until_the_retries_run_out_is_unreachable(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.throttle_next(times=3, retry_after=1, status=503)
    client, waits = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert waits == [1.0, 1.0] and caught.value.failure.kind == "unreachable" and caught.value.failure.votes


def test_an_identity_outage_is_outage_evidence(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    entra.down = True
    client, _ = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.token()
    client.close()
    assert caught.value.failure.kind == "unreachable"
    assert "503" in caught.value.failure.detail  # msal raises for a 5xx and keeps only the status


def test_a_wrong_secret_is_ours_to_fix_and_votes_nothing(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    client, _ = client_for(entra, graph, client_secret="wrong")
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert caught.value.failure.kind == "misconfigured" and not caught.value.failure.votes
    assert "invalid_client" in caught.value.failure.detail and "AADSTS7000215" in caught.value.failure.detail
    assert "wrong" not in str(caught.value)  # the secret never appears in an error


def test_graph_host_down_is_unreachable(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    client, _ = client_for(entra, graph)
    client.token()
    graph.stop()
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert caught.value.failure.kind == "unreachable" and "connection failed" in caught.value.failure.detail


def test_untrusted_tls_is_unreachable_and_says_why(
    microsoft: tuple[FakeEntra, FakeGraph], monkeypatch: pytest.MonkeyPatch
) -> None:
    entra, graph = microsoft
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    client, _ = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert "TLS error" in caught.value.failure.detail


def test_a_next_link_to_another_host_is_not_followed(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.script.append(
        Response.json(
            200, {"value": [], "@odata.nextLink": "https://evil.example/v1.0/admin/serviceAnnouncement/issues"}
        )
    )
    client, _ = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert caught.value.failure.kind == "misconfigured" and "evil.example" in caught.value.failure.detail


def test_missing_consent_is_reported_as_such(microsoft: tuple[FakeEntra, FakeGraph]) -> None:
    entra, graph = microsoft
    graph.script.append(
        Response.json(
            403, {"error": {"code": "Forbidden", "message": "Caller does not have access.", "innerError": {}}}
        )
    )
    client, _ = client_for(entra, graph)
    with pytest.raises(GraphError) as caught:
        client.snapshot()
    client.close()
    assert caught.value.failure.kind == "misconfigured" and "ServiceHealth.Read.All" in caught.value.failure.detail


def test_parsing_is_lenient_with_what_it_does_not_need() -> None:
    assert parse_issue({"title": "no id"}) is None
    parsed = parse_issue({**issue("MO1", status="FalsePositive", classification="Advisory"), "brandNewField": {"x": 1}})
    assert parsed is not None and parsed.status == "falsePositive" and parsed.classification == "advisory"
    assert parsed.false_positive and not parsed.open
    odd = parse_issue({**issue("MO2"), "status": "someFutureStatus", "posts": None, "impactDescription": None})
    assert odd is not None and odd.status == "someFutureStatus" and odd.open and odd.latest_post is None
    assert parse_time("2026-03-02T09:12:31.7366667Z") is not None and parse_time("yesterday") is None
    assert html_to_text("<p>a&amp;b</p><ul><li>one</li><li>two</li></ul>") == "a&b\none\ntwo"


# -- SMTP ---------------------------------------------------------------------------


def test_smtp_probe_healthy_dialogue_never_sends_data() -> None:
    with FakeSMTP() as fake:
        result = probes.smtp_probe(
            host="127.0.0.1",
            port=fake.port,
            timeout=5,
            mail_from="probe@failover.example",
            rcpt_to="postmaster@contoso.example",
        )
    assert result.healthy, result.summary
    assert fake.commands == ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert [r["code"] for r in result.details["replies"]] == [220, 250, 250, 250, 250, 221]
    assert "Microsoft ESMTP MAIL Service ready" in result.details["replies"][0]["text"]


def test_smtp_probe_451_4_3_2_is_failing_with_the_reply_as_evidence() -> None:
    with FakeSMTP(failing=True) as fake:
        result = probes.smtp_probe(
            host="127.0.0.1",
            port=fake.port,
            timeout=5,
            mail_from="probe@failover.example",
            rcpt_to="postmaster@contoso.example",
        )
    assert not result.healthy
    assert result.summary.startswith("RCPT TO: 451 4.3.2 Temporary server error")
    assert "DATA" not in fake.commands and fake.commands[-2:] == ["RSET", "QUIT"]
    assert result.details["replies"][3]["text"] == OUTAGE_REPLY.removeprefix("451 ")
    assert "postmaster@contoso.example" not in str(result.details)  # addresses are masked in evidence


def test_smtp_probe_refused_and_silent_servers_fail() -> None:
    refused = probes.smtp_probe(host="127.0.0.1", port=free_port(), timeout=2)
    assert not refused.healthy and "connection refused" in refused.summary
    with SilentServer() as silent:
        hung = probes.smtp_probe(host="127.0.0.1", port=silent.port, timeout=0.5)
    assert not hung.healthy and hung.summary == "connect: no answer within 0.5s"


# -- HTTP ---------------------------------------------------------------------------


class Target(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.route("GET", "/owa/", lambda request: Response(self.status, b"", {"Location": "/login"}))


def test_http_probe_classifies_statuses_without_following_redirects() -> None:
    with Target() as target:
        target.status = 302  # type: ignore[attr-defined]
        ok = probes.http_probe(url=f"{target.url}/owa/", expect_status=(200, 302, 401), timeout=5)
        target.status = 503  # type: ignore[attr-defined]
        down = probes.http_probe(url=f"{target.url}/owa/", expect_status=(200, 302, 401), timeout=5)
    assert ok.healthy and ok.summary == "HTTP 302"
    assert not down.healthy and down.summary == "HTTP 503 (expected 200, 302, 401)"


def test_http_probe_timeouts_and_refusals_fail() -> None:
    with FakeServer(latency=2.0) as slow:
        slow.route("GET", "/", lambda request: Response(200))
        late = probes.http_probe(url=f"{slow.url}/", timeout=0.3)
    refused = probes.http_probe(url=f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert not late.healthy and late.summary == "no answer within 0.3s"
    assert not refused.healthy and refused.summary.startswith("connection failed")
