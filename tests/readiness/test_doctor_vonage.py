"""Doctor's Vonage checks, through the official SDK against the fake: skipped, good, bad key, no credit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.channels import vonage_readiness
from failover.domain.readiness import Finding, Result
from failover.runtime import Runtime
from tests.fakes.tls import TestCA
from tests.fakes.vonage import FakeVonage


@pytest.fixture
def fake_vonage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVonage]:
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))  # how the SDK's requests trust the fake
    with FakeVonage(ssl_context=ca.server_context()) as fake:
        yield fake  # type: ignore[misc]


def vonage_check(fake: FakeVonage, secret: str | None = None) -> dict[str, Finding]:
    found = vonage_readiness.check(api_key=fake.api_key, api_secret=secret or fake.api_secret, api_base=fake.url)
    return {f.check: f for f in found}


def test_vonage_good(fake_vonage: FakeVonage) -> None:
    found = vonage_check(fake_vonage)
    assert found["vonage.credentials"].result == Result.OK
    assert found["vonage.balance"].result == Result.OK and "10.28 EUR" in found["vonage.balance"].detail
    assert fake_vonage.requests("GET", "/account/get-balance")


def test_vonage_bad_secret(fake_vonage: FakeVonage) -> None:
    found = vonage_check(fake_vonage, secret="rotated-away")
    assert list(found) == ["vonage.credentials"]
    assert found["vonage.credentials"].result == Result.FAIL and "401" in found["vonage.credentials"].detail
    assert "rotated-away" not in found["vonage.credentials"].detail


def test_vonage_no_credit(fake_vonage: FakeVonage) -> None:
    fake_vonage.balance = 0.0
    assert vonage_check(fake_vonage)["vonage.balance"].result == Result.FAIL


def test_vonage_not_configured_is_skipped(runtime: Runtime) -> None:
    found = {f.check: f for f in runtime.readiness.report(only=("vonage",)).findings}
    assert found["vonage.credentials"].result == Result.SKIPPED
    assert "not configured" in found["vonage.credentials"].detail
