"""A tiny run of the benchmark harness (issue 7): correctness only, never timing.

50 recipients through the same code ``make bench`` uses - provider fakes in
their own process, real ``failover worker`` and ``beat`` processes, the bench
runbook (SMS and email to everyone) - in both modes: everyone is reached
exactly once on each channel and every ledger row ends ``sent``. And the
Graph flip measurement with two flips in production mode: each opens an
incident of its own, which the watcher's all-clear closes before the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import scenarios
from benchmarks.fakes import ProviderFakes
from benchmarks.stack import Installation, Services, write_config
from tests.services import PostgresCluster, RedisServer

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
    servers = result["servers"]  # what the run asked of PostgreSQL and Redis (the capacity table)
    if mode == "embedded":
        assert servers is None  # no servers of its own
        return
    # Every row is claimed and its result recorded: at least two updates a message; the ledger's rows COPYed in.
    assert servers["messages"] == 2 * PEOPLE and servers["pg_rows_updated"] >= 2 * (PEOPLE + 1)
    assert servers["pg_rows_inserted"] >= PEOPLE + 1 and servers["pg_commits"] > 0
    # The broker is Redis: each batch task is published and taken (two commands at least), and run.
    assert servers["broker_tasks"] >= result["batches"] and servers["redis_commands"] >= 2 * result["batches"]
    assert "lpush" in servers["redis_top"] or "brpop" in servers["redis_top"] or len(servers["redis_top"]) == 8


def test_the_fakes_answer_20429_above_their_cap_and_record_it(fakes: ProviderFakes) -> None:
    """The instrument itself: over the concurrency cap Twilio's fake answers 429 / 20429, and the record says so."""
    import json
    import threading
    import urllib.error
    import urllib.request
    from base64 import b64encode

    env = fakes.env()
    fakes.configure(latency=0.3, max_concurrent=2)
    fakes.reset()
    auth = b64encode(f"{env['TWILIO_ACCOUNT_SID']}:{env['TWILIO_AUTH_TOKEN']}".encode()).decode()
    url = f"{fakes.twilio_url}/2010-04-01/Accounts/{env['TWILIO_ACCOUNT_SID']}/Messages.json"
    answers: list[tuple[int, int | None]] = []

    def send(index: int) -> None:
        body = f"To=%2B1202555{1000 + index}&From=%2B12025550100&Body=hello".encode()
        request = urllib.request.Request(url, data=body, headers={"Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answers.append((response.status, None))
        except urllib.error.HTTPError as exc:
            with exc:
                answers.append((exc.code, json.loads(exc.read())["code"]))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        stats = fakes.stats("twilio")
    finally:
        fakes.configure(latency=0.01, max_concurrent=100)
    assert sorted(answers, key=lambda a: a[0]) == [(201, None), (201, None), (429, 20429), (429, 20429)]
    assert stats["by_status"] == {"201": 2, "429": 2} and stats["units"] == 2
    # A request is refused only while two others are in flight, so the record saw at least three at once.
    assert stats["peak_in_flight"] >= 3 and stats["max_started_in_any_second"] == 4
    assert stats["overhead_ms"]["max"] < 100  # answers came after the configured latency, not much later


def test_the_graph_flip_run_opens_and_clears_an_incident_per_flip(
    fakes: ProviderFakes,
    tmp_path: Path,
    pg_cluster: PostgresCluster,
    redis_server: RedisServer,
    pg_template: str,
) -> None:
    """The Graph flip measurement, production mode, two flips: each opens its own incident, everyone gets the SMS."""
    servers = Services(postgres=pg_cluster, redis=redis_server, template=pg_template)
    try:
        result = scenarios.graph_flip(
            "production",
            runs=2,
            people=20,
            poll_interval=1.0,
            root=tmp_path,
            fakes=fakes,
            services=servers,
            latency=0.01,
            concurrency=100,
            recover_hold=0.0,  # the all-clear at the first clear poll: a second quicker
        )
    finally:
        servers.close()
    assert result["measured"] and len(result["samples_s"]) == 2
    assert result["incidents"] == result["incidents_by_watcher"] == 2  # opened and resolved by the watcher
    assert result["activations"] == {"bench-graph:steps": 2}
    assert result["statuses"] == {"sms:sent": 40}
    assert result["exactly_once"]
    assert result["after_poll_p50_s"] is not None  # the poll that carried each flip was found
    assert result["log_tracebacks"] == 0 and not result["contact_data_in_logs"]
