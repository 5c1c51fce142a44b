"""A tiny run of the benchmark harness (issue 7): correctness only, never timing.

50 recipients through the same code ``make bench`` uses - provider fakes in
their own process, real ``failover worker`` and ``beat`` processes, the bench
runbook (SMS and email to everyone) - in both modes: everyone is reached
exactly once on each channel and every ledger row ends ``sent``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import scenarios
from benchmarks.fakes import ProviderFakes
from benchmarks.stack import Installation, Services, write_config
from tests.services import PostgresCluster

pytestmark = pytest.mark.integration
PEOPLE = 50


@pytest.fixture(scope="module")
def fakes() -> Iterator[ProviderFakes]:
    with ProviderFakes(latency=0.01, max_concurrent=100) as running:
        yield running


@pytest.fixture(params=["production", "embedded"])
def services(request: pytest.FixtureRequest) -> Iterator[tuple[str, Services]]:
    if request.param == "embedded":
        yield "embedded", Services()
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    shared = Services(
        postgres=cluster, redis=request.getfixturevalue("redis_server"), template=request.getfixturevalue("pg_template")
    )
    yield "production", shared
    shared.close()


def test_the_bench_run_reaches_everyone_exactly_once(
    services: tuple[str, Services], fakes: ProviderFakes, tmp_path: Path
) -> None:
    mode, servers = services
    config = write_config(tmp_path / "config", PEOPLE)
    with Installation(mode, tmp_path, config, fakes, servers) as inst:
        result = scenarios.Run(inst, fakes).measure(runbook="bench", sms=PEOPLE, email=PEOPLE, timeout=120)
        logs = inst.logs()
    assert result["counts"] == {"sms": PEOPLE, "email": PEOPLE}
    assert result["statuses"] == {"sms:sent": PEOPLE, "email:sent": PEOPLE}
    assert result["twilio"]["units"] == PEOPLE and result["twilio"]["duplicates"] == 0
    assert result["sendgrid"]["units"] == PEOPLE and result["sendgrid"]["duplicates"] == 0
    assert result["sendgrid"]["requests"] == 1  # one text for everyone: one request of 50 personalizations
    assert result["exactly_once"]
    assert "+1202555" not in logs and "@personal.example" not in logs  # no contact data in the workers' logs
