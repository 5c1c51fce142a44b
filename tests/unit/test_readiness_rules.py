"""The pure readiness rules: what counts as Microsoft, expiry and balance verdicts, exit codes."""

from __future__ import annotations

import datetime as dt

import pytest

from failover.domain import readiness as r
from failover.domain.readiness import Result

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("host", "microsoft"),
    [
        ("contoso-com.mail.protection.outlook.com", True),
        ("contoso-com.mail.protection.outlook.com.", True),
        ("CONTOSO-COM.MAIL.PROTECTION.OUTLOOK.COM", True),
        ("contoso-com.l-v1.mx.microsoft", True),
        ("mx1.mailhost.example.net", False),
        ("outlook.com.evil.example", False),
        ("mx.sendgrid.net", False),
    ],
)
def test_microsoft_mail_hosts(host: str, microsoft: bool) -> None:
    assert r.is_microsoft_mail_host(host) is microsoft


@pytest.mark.parametrize(
    ("records", "found"),
    [
        (["v=spf1 include:spf.protection.outlook.com -all"], ["spf.protection.outlook.com"]),
        (['"v=spf1 ip4:192.0.2.1 +include:SPF.protection.outlook.com ~all"'], ["spf.protection.outlook.com"]),
        (["v=spf1 redirect=spf.protection.outlook.com"], ["spf.protection.outlook.com"]),
        (["v=spf1 include:sendgrid.net ~all"], []),
        (["MS=ms12345678", "google-site-verification=abc"], []),  # not SPF records
        (["v=spf2.0/pra include:spf.protection.outlook.com"], []),  # Sender ID, not SPF
    ],
)
def test_spf_microsoft_includes(records: list[str], found: list[str]) -> None:
    assert r.spf_microsoft_includes(records) == found


def test_microsoft_web_hosts() -> None:
    names = ["lb.hosting.example.net", "x.z01.azurefd.net.", "ns1-04.azure-dns.com", "app.azurewebsites.net"]
    assert r.microsoft_web_hosts(names) == ["x.z01.azurefd.net", "ns1-04.azure-dns.com", "app.azurewebsites.net"]


@pytest.mark.parametrize(
    ("expires", "result", "text"),
    [
        (NOW + dt.timedelta(days=200), Result.OK, "expires on 2027-06-21 (in 200 days)"),
        (NOW + dt.timedelta(days=14), Result.WARN, "expires on 2026-12-17 (in 14 days)"),
        (NOW + dt.timedelta(hours=30), Result.WARN, "expires on 2026-12-04 (in 1 day)"),
        (NOW - dt.timedelta(seconds=1), Result.FAIL, "expired on 2026-12-03"),
        (None, Result.SKIPPED, "no expiry date known"),
    ],
)
def test_expiry(expires: dt.datetime | None, result: Result, text: str) -> None:
    assert r.expiry(expires, now=NOW, warn_within=dt.timedelta(days=14)) == (result, text)


@pytest.mark.parametrize(
    ("amount", "result"), [(100.0, Result.OK), (20.0, Result.OK), (19.99, Result.WARN), (0.0, Result.FAIL)]
)
def test_balance(amount: float, result: Result) -> None:
    assert r.balance(amount, "USD", threshold=20.0)[0] == result


@pytest.mark.parametrize(
    ("results", "plain", "strict"),
    [
        ([Result.OK, Result.SKIPPED], 0, 0),
        ([Result.OK, Result.WARN], 0, 2),
        ([Result.WARN, Result.FAIL], 1, 1),
        ([], 0, 0),
    ],
)
def test_exit_codes(results: list[Result], plain: int, strict: int) -> None:
    report = r.Report.of([r.Finding(f"x.{n}", "X", "x", result) for n, result in enumerate(results)], now=NOW)
    assert report.exit_code() == plain and report.exit_code(strict=True) == strict


def test_report_groups_by_area_in_order_and_counts() -> None:
    findings = [
        r.ok("service.a", "Service", "a"),
        r.warn("twilio.b", "Twilio", "b", "low", "top up"),
        r.fail("service.c", "Service", "c", "dead", "start it"),
    ]
    report = r.Report.of(findings, now=NOW)
    assert [(area, [f.check for f in items]) for area, items in report.areas()] == [
        ("Service", ["service.a", "service.c"]),
        ("Twilio", ["twilio.b"]),
    ]
    assert report.counts == {"ok": 1, "warn": 1, "fail": 1, "skipped": 0}
    assert report.as_dict()["result"] == "fail"


@pytest.mark.parametrize(
    ("delta", "text"),
    [(dt.timedelta(seconds=40), "40 s"), (dt.timedelta(minutes=3), "3 min"), (dt.timedelta(days=120), "120 days")],
)
def test_age_text(delta: dt.timedelta, text: str) -> None:
    assert r.age_text(delta) == text
