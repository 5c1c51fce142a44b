"""Independence from Microsoft: DNS through a local DNS server (good and bad zones), TLS with a throwaway CA."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.clock import utcnow
from failover.domain.readiness import Result
from failover.sources import independence
from tests.fakes.dns import FakeDNS, soa
from tests.fakes.server import FakeServer, Response
from tests.fakes.tls import TestCA

ZONES = {
    # A sending domain of its own: mail through a third party, SPF for SendGrid.
    "failover-mail.example.org": [
        soa("failover-mail.example.org"),
        ("MX", "10 mx1.mailhost.example.net."),
        ("TXT", '"v=spf1 include:sendgrid.net ~all"'),
        ("NS", "ns1.dnshost.example.net."),
    ],
    # The tenant's own domain: Exchange Online MX and Microsoft's SPF.
    "contoso.com": [
        soa("contoso.com"),
        ("MX", "0 contoso-com.mail.protection.outlook.com."),
        ("TXT", '"v=spf1 include:spf.protection.outlook.com -all"'),
        ("TXT", '"MS=ms12345678"'),
    ],
    # Only SPF says Microsoft (MX elsewhere, e.g. a gateway in front of Exchange Online).
    "gateway.example": [
        soa("gateway.example"),
        ("MX", "10 mx.gateway-provider.example."),
        ("TXT", '"v=spf1 ip4:192.0.2.1 include:spf.protection.outlook.com ~all"'),
    ],
    "nospf.example": [soa("nospf.example"), ("MX", "10 mx.nospf.example.")],
    # Public URLs: one at a neutral host, one behind Azure Front Door, one in Azure DNS.
    "example.org": [soa("example.org"), ("NS", "ns1.dnshost.example.net."), ("NS", "ns2.dnshost.example.net.")],
    "failover.example.org": [("CNAME", "lb.hosting.example.net.")],
    "status.example.com": [("CNAME", "failover-abc123.z01.azurefd.net.")],
    "example.com": [soa("example.com"), ("NS", "ns1.dnshost.example.net.")],
    "azure-hosted.example": [
        soa("azure-hosted.example"),
        ("NS", "ns1-04.azure-dns.com."),
        ("NS", "ns2-04.azure-dns.net."),
    ],
    "failover.azure-hosted.example": [("A", "192.0.2.10")],
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[FakeDNS]:
    with FakeDNS(ZONES) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def resolver(dns_server: FakeDNS):  # type: ignore[no-untyped-def]
    return independence.resolver(dns_server.address, timeout=3)


def test_own_sending_domain_is_independent(resolver) -> None:  # type: ignore[no-untyped-def]
    found = {f.check: f for f in independence.mail_domain(resolver, "failover-mail.example.org")}
    assert found["independence.mx"].result == Result.OK
    assert "mx1.mailhost.example.net" in found["independence.mx"].detail
    assert found["independence.spf"].result == Result.OK


def test_mx_and_spf_at_microsoft_fail(resolver, dns_server: FakeDNS) -> None:  # type: ignore[no-untyped-def]
    found = {f.check: f for f in independence.mail_domain(resolver, "contoso.com")}
    assert found["independence.mx"].result == Result.FAIL
    assert "contoso-com.mail.protection.outlook.com" in found["independence.mx"].detail
    assert found["independence.spf"].result == Result.FAIL
    assert "spf.protection.outlook.com" in found["independence.spf"].detail
    assert ("contoso.com.", "MX") in dns_server.queries  # the answer came from the DNS server


def test_spf_alone_at_microsoft_fails(resolver) -> None:  # type: ignore[no-untyped-def]
    found = {f.check: f for f in independence.mail_domain(resolver, "gateway.example")}
    assert found["independence.mx"].result == Result.OK
    assert found["independence.spf"].result == Result.FAIL


def test_no_spf_is_a_warning(resolver) -> None:  # type: ignore[no-untyped-def]
    found = {f.check: f for f in independence.mail_domain(resolver, "nospf.example")}
    assert found["independence.spf"].result == Result.WARN


def test_public_url_at_a_neutral_host(resolver) -> None:  # type: ignore[no-untyped-def]
    finding = independence.public_host(resolver, "https://failover.example.org")
    assert finding.result == Result.OK, finding
    assert "lb.hosting.example.net" in finding.detail and "ns1.dnshost.example.net" in finding.detail


@pytest.mark.parametrize(
    ("url", "culprit"),
    [
        ("https://status.example.com", "azurefd.net"),  # CNAME to Azure Front Door
        ("https://failover.azure-hosted.example", "azure-dns.com"),  # zone in Azure DNS
    ],
)
def test_public_url_served_from_microsoft(resolver, url: str, culprit: str) -> None:  # type: ignore[no-untyped-def]
    finding = independence.public_host(resolver, url)
    assert finding.result == Result.FAIL and culprit in finding.detail


def test_public_url_without_a_name_is_skipped(resolver) -> None:  # type: ignore[no-untyped-def]
    assert independence.public_host(resolver, "http://127.0.0.1:8000").result == Result.SKIPPED


def test_dns_unreachable_fails(tmp_path: Path) -> None:
    server = FakeDNS({})
    address = server.address
    server.stop()  # nobody answers on that port any more
    res = independence.resolver(address, timeout=0.5)
    findings = independence.mail_domain(res, "failover-mail.example.org")
    assert findings[0].result == Result.FAIL and "DNS did not answer" in findings[0].detail


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


def serve(ca: TestCA, valid_for: dt.timedelta) -> FakeServer:
    server = FakeServer(ssl_context=ca.server_context(valid_for=valid_for))
    server.route("GET", "/", lambda request: Response.json(200, {}))
    return server.start()


@pytest.mark.parametrize(
    ("valid_for", "expected", "words"),
    [
        (dt.timedelta(days=200), Result.OK, "in 199 days"),
        (dt.timedelta(days=5), Result.WARN, "in 4 days"),
        (dt.timedelta(days=-2), Result.FAIL, "expired"),
    ],
)
def test_certificate(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch, valid_for: dt.timedelta, expected: Result, words: str
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))
    server = serve(ca, valid_for)
    try:
        finding = independence.certificate(server.url, now=utcnow())
    finally:
        server.stop()
    assert finding.result == expected, finding
    assert words in finding.detail
    assert (finding.fix != "") == (expected != Result.OK)


def test_certificate_from_an_unknown_ca_fails(ca: TestCA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(TestCA(tmp_path / "other").bundle))
    server = serve(ca, dt.timedelta(days=200))
    try:
        finding = independence.certificate(server.url, now=utcnow())
    finally:
        server.stop()
    assert finding.result == Result.FAIL and "not valid" in finding.detail


def test_plain_http_is_skipped() -> None:
    assert independence.certificate("http://127.0.0.1:8000", now=utcnow()).result == Result.SKIPPED


# -- status-page publish targets (issue 14) --------------------------------------------------------


def test_publish_targets(resolver) -> None:  # type: ignore[no-untyped-def]
    from failover.domain.statuspage import DirectoryTarget, S3Target

    targets = [
        DirectoryTarget(kind="directory", path="/srv/status"),
        S3Target(kind="s3", bucket="status-page"),
        S3Target(kind="s3", bucket="status-page", endpoint_url="https://failover.example.org"),
        S3Target(kind="s3", name="azure", bucket="status-page", endpoint_url="https://status.example.com"),
    ]
    found = {f.check: f for f in independence.publish_targets(resolver, targets)}
    assert [f.result for f in found.values()] == [Result.OK, Result.OK, Result.OK, Result.FAIL]
    assert "azurefd.net" in found["independence.publish_target.4"].detail
    assert "azure" in found["independence.publish_target.4"].what


def test_no_publish_target_warns(resolver) -> None:  # type: ignore[no-untyped-def]
    (finding,) = independence.publish_targets(resolver, [])
    assert finding.check == "independence.publish_target" and finding.result == Result.WARN
    assert "lives only on this host" in finding.detail


def test_doctor_reads_the_targets_from_status_yaml(dns_server: FakeDNS, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from failover.engine import doctor

    ctx: Any = SimpleNamespace(settings=SimpleNamespace(config_dir=tmp_path))
    res = independence.resolver(dns_server.address, timeout=3)
    (tmp_path / "status.yaml").write_text(
        "publish:\n  - {kind: s3, bucket: status-page, endpoint_url: 'https://status.example.com'}\n"
    )
    (finding,) = doctor._publish_targets(ctx, res)
    assert finding.result == Result.FAIL and "azurefd.net" in finding.detail
    (tmp_path / "status.yaml").write_text("publish:\n  - {kind: ftp}\n")
    (finding,) = doctor._publish_targets(ctx, res)
    assert finding.result == Result.FAIL and "status.yaml" in finding.detail
