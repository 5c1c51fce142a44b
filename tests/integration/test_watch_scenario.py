"""The whole watcher with real `failover worker` and `failover beat` processes.

Graph (a TLS fake with a test CA, reached through msal) flips Exchange Online
to serviceInterruption / incident: the exchange-outage runbook's SMS reaches
the fake Twilio within one poll interval plus two seconds. Graph flips back:
the all-clear goes out once, and only after recover_hold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from failover.engine import audit
from failover.models import Incident, WatchHead
from failover.runtime import Runtime
from tests.conftest import make_people, provider_env, write_config
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, FakeEntra, FakeGraph, issue
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.tls import TestCA
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers

pytestmark = pytest.mark.integration
POLL_S = 2.0
RECOVER_HOLD_S = 4.0
PEOPLE = 6  # every one of them is in group:oncall


@pytest.fixture
def microsoft(tmp_path: Path) -> Iterator[tuple[TestCA, FakeEntra, FakeGraph]]:
    ca = TestCA(tmp_path / "ca")
    with (
        FakeEntra(ssl_context=ca.server_context()) as entra,
        FakeGraph(entra, ssl_context=ca.server_context()) as graph,
    ):  # type: ignore[union-attr]
        yield ca, entra, graph  # type: ignore[misc]


@pytest.fixture(params=["embedded", "redis+postgresql"])
def stack(
    request: pytest.FixtureRequest,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
    microsoft: tuple[TestCA, FakeEntra, FakeGraph],
) -> Iterator[tuple[Runtime, dict[str, str]]]:
    ca, entra, graph = microsoft
    config, books = write_config(tmp_path, make_people(PEOPLE))
    detection = {
        "watch": ["Exchange Online", "Microsoft Teams"],
        "graph": {"poll_interval": f"{POLL_S:g}s", "timeout": "5s"},
        "confirm": {"hold": "3m", "recover_hold": f"{RECOVER_HOLD_S:g}s", "evaluate_interval": "1s"},
    }
    (config / "detection.yaml").write_text(yaml.safe_dump(detection))
    values = {
        **env,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        **provider_env(fake_twilio, fake_sendgrid),
        "FAILOVER_GRAPH_TENANT_ID": TENANT,
        "FAILOVER_GRAPH_CLIENT_ID": CLIENT_ID,
        "FAILOVER_GRAPH_CLIENT_SECRET": CLIENT_SECRET,
        "FAILOVER_GRAPH_API_BASE": graph.url,
        "FAILOVER_GRAPH_AUTHORITY_BASE": entra.url,
        "REQUESTS_CA_BUNDLE": str(ca.bundle),  # msal and requests in the worker trust the test CA
    }
    runtime = workers.stack_runtime(request.param, values, request, tmp_path, monkeypatch)
    yield runtime, values
    runtime.close()


def arrivals(twilio: FakeTwilio, marker: str) -> list[tuple[float, str]]:
    with twilio.lock:
        return sorted((m["_created"], m["to"]) for m in twilio.messages if marker in m["body"])


def test_graph_outage_to_sms_and_back_to_one_all_clear(
    stack: tuple[Runtime, dict[str, str]],
    tmp_path: Path,
    fake_twilio: FakeTwilio,
    microsoft: tuple[TestCA, FakeEntra, FakeGraph],
) -> None:
    runtime, env = stack
    _, entra, graph = microsoft
    graph.set_issues(issue("EX100001", status="serviceRestored", resolved=True))  # last week's, long over
    log = tmp_path / "watch.log"
    worker = workers.start("worker", env, log)
    beat = workers.start("beat", env, log)
    try:

        def polled_ok() -> bool:
            with runtime.database.reading() as session:
                head = session.get(WatchHead, 1)
                return head is not None and head.graph_state == "ok"

        workers.wait_until(polled_ok, timeout=60, what="a first successful Graph poll", log=log)

        flipped = time.time()
        graph.set_issues(issue("EX226574", status="serviceInterruption", classification="incident"))
        workers.wait_until(
            lambda: len(arrivals(fake_twilio, "EX226574")) == PEOPLE, timeout=30, what="the outage SMS", log=log
        )
        first = arrivals(fake_twilio, "EX226574")[0][0]
        assert first - flipped <= POLL_S + 2.0, f"first SMS {first - flipped:.2f}s after the flip"

        restored = time.time()
        graph.set_issues(issue("EX226574", status="serviceRestored", resolved=True))
        workers.wait_until(
            lambda: len(arrivals(fake_twilio, "ALL CLEAR")) == PEOPLE, timeout=30, what="the all-clear", log=log
        )
        first_clear = arrivals(fake_twilio, "ALL CLEAR")[0][0]
        assert first_clear - restored >= RECOVER_HOLD_S, f"all-clear {first_clear - restored:.2f}s after recovery"

        settled = graph.polls()
        workers.wait_until(lambda: graph.polls() >= settled + 3, timeout=30, what="three more polls", log=log)
        # A real worker and a real beat have said they are alive: what doctor and health checks read.
        alive = {
            f.check: f.result.value for f in runtime.readiness.report(only=("service.worker", "service.beat")).findings
        }
        assert alive == {"service.worker": "ok", "service.beat": "ok"}
    finally:
        workers.stop(beat)
        workers.stop(worker)

    outage, clear = arrivals(fake_twilio, "EX226574"), arrivals(fake_twilio, "ALL CLEAR")
    assert len(outage) == PEOPLE and len({to for _, to in outage}) == PEOPLE  # once each
    assert len(clear) == PEOPLE and len({to for _, to in clear}) == PEOPLE
    assert entra.token_requests() == 1  # msal served every later poll from its cache
    with runtime.database.reading() as session:
        [incident] = session.scalars(select(Incident))
        assert audit.verify(session).ok
    assert (incident.state, incident.resolved_by, incident.ms_issue_ids) == ("resolved", "watcher", ["EX226574"])
    text = log.read_text()
    assert "Traceback" not in text
    assert "+1202555" not in text and "@personal.example" not in text and CLIENT_SECRET not in text
