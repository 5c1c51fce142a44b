"""Fault injection: break real processes and servers mid-activation; nobody is missed, nobody gets two.

Every test asserts from the fake provider's own records that each recipient
received exactly one message, and that the ledger and the audit log agree.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict

import pytest

from tests.fakes.twilio import Failure
from tests.faults.conftest import Rig, with_people
from tests.integration import workers

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def wait_for_messages(rig: Rig, count: int, timeout: float = 60) -> None:
    workers.wait_until(
        lambda: len(rig.twilio.messages) >= count, timeout=timeout, what=f"{count} messages at the fake", log=rig.log
    )


def test_1_worker_killed_mid_broadcast(rig: Rig) -> None:
    """kill -9 a worker while it sends 2,000 SMS; a new worker finishes; 0 lost, 0 duplicates."""
    with_people(rig, 2000)
    rig.twilio.latency = 0.05
    rig.beat()
    first = rig.worker("first")
    rig.activate()
    wait_for_messages(rig, 400)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = len(rig.twilio.messages)
    assert at_kill < 2000, "the worker finished before it could be killed; raise the latency"
    rig.worker("second")
    rig.wait_until_settled()
    rig.assert_everyone_reached_exactly_once()


def test_2_broker_down_when_the_operator_presses_the_button(rig: Rig) -> None:
    """Redis is stopped before the activation and kept down 20 s; everything goes out once it is back."""
    with_people(rig, 200)
    rig.beat()
    rig.worker("w")
    rig.redis.stop()
    started = time.monotonic()
    activation_id, broker_ok = rig.activate()
    assert not broker_ok  # accepted, durable, and honest about the broker
    assert rig.statuses()["pending"] == 200
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))  # the outage itself: real time, on purpose
    assert len(rig.twilio.messages) == 0
    rig.redis.start()
    rig.wait_until_settled(timeout=240)
    rig.assert_everyone_reached_exactly_once()


def test_3_database_restarted_mid_activation(rig: Rig) -> None:
    """PostgreSQL restarts while 1,000 SMS go out; nothing lost, nothing doubled."""
    with_people(rig, 1000)
    rig.twilio.latency = 0.05
    rig.beat()
    rig.worker("w1")
    rig.activate()
    wait_for_messages(rig, 200)
    rig.pg.stop("fast")
    time.sleep(3)  # the database is really gone for a while
    rig.pg.start()
    rig.wait_until_settled(timeout=240)
    rig.assert_everyone_reached_exactly_once()


def test_4_provider_errors_and_throttling(rig: Rig) -> None:
    """20 % 500s (half of them after accepting the message), 10 % 20429 with Retry-After: all delivered once."""
    with_people(rig, 300)
    rig.env["FAILOVER_MAX_ATTEMPTS"] = "12"  # 30 % failures: 0.3^12 makes running out of attempts negligible
    # A run of 500s could trip the breaker and hand people to the email fallback; that is test 6's subject.
    rig.env["FAILOVER_BREAKER_THRESHOLD"] = "50"
    rig.twilio.chaos = [
        (0.10, Failure(500, message="Internal error")),
        (0.10, Failure(500, message="Internal error after accepting", accept=True)),
        (0.10, Failure(429, 20429, "Too Many Requests", retry_after=2)),
    ]
    rig.beat()
    rig.worker("w1")
    rig.worker("w2")
    rig.activate()
    rig.wait_until_settled(timeout=240)
    rig.assert_everyone_reached_exactly_once()
    # Retry-After honoured: after a 429 a number is not tried again for 2 seconds.
    by_number: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for exchange in rig.twilio.exchanges:
        if exchange.request.method == "POST":
            by_number[exchange.request.form()["To"]].append((exchange.request.received_at, exchange.status))
    throttled = 0
    for attempts in by_number.values():
        attempts.sort()
        for (at, status), (next_at, _) in zip(attempts, attempts[1:], strict=False):
            if status == 429:
                throttled += 1
                assert next_at - at >= 2.0
    assert throttled > 0


def test_5_limits_hold_with_two_workers(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake caps concurrency at 5 and the rate at 20/s; with the same limits configured it never refuses."""
    with_people(rig, 200)
    rig.env.update({"FAILOVER_TWILIO_MAX_CONCURRENT": "5", "FAILOVER_TWILIO_RATE": "20"})
    rig.twilio.max_concurrent = 5
    rig.twilio.rate_per_second = 20
    rig.twilio.latency = 0.05
    rig.beat()
    rig.worker("w1")
    rig.worker("w2")
    rig.activate()
    rig.wait_until_settled(timeout=120)
    rig.assert_everyone_reached_exactly_once()
    posts = sorted(e.request.received_at for e in rig.twilio.exchanges if e.request.method == "POST")
    worst = max(sum(1 for t in posts if first <= t < first + 1.0) for first in posts)
    assert worst <= 20, f"{worst} requests in one second"
    assert rig.twilio.peak_in_flight <= 5
    assert all(e.status == 201 for e in rig.twilio.exchanges if e.request.method == "POST")


def test_6_provider_down_for_good_opens_the_circuit(rig: Rig) -> None:
    """Twilio answers 503 to everything: the circuit opens, retries stop, the email fallback delivers,
    readiness and the console say so."""
    with_people(rig, 100)
    rig.env.update(
        {
            "FAILOVER_BREAKER_THRESHOLD": "3",
            "FAILOVER_BREAKER_COOLDOWN": "600",
            "FAILOVER_TWILIO_MAX_CONCURRENT": "10",
            "FAILOVER_MAX_ATTEMPTS": "2",
        }
    )
    rig.twilio.chaos = [(1.0, Failure(503, message="Service Unavailable"))]
    rig.beat()
    rig.worker("w1")
    rig.activate()
    workers.wait_until(
        lambda: rig.runtime.delivery.guard.circuits()["twilio"].open, timeout=60, what="circuit open", log=rig.log
    )
    time.sleep(5)  # let the workers try (and be refused by the breaker) for a while
    posts = [e for e in rig.twilio.exchanges if e.request.method == "POST"]
    # Without a breaker every row would be tried until its attempts ran out (100 x 5 requests). With it,
    # only the first wave (at most the 10 concurrent slots) and the 3 failures that trip it get through.
    assert len(posts) <= 10 + 3, f"{len(posts)} requests reached a provider that is down"
    # The SMS rows run out of attempts against the open circuit; each person is moved to email, once.
    rig.wait_until_settled(timeout=120)
    workers.wait_until(lambda: len(rig.sendgrid.recipients()) == 100, timeout=60, what="email fallback", log=rig.log)
    assert set(rig.sendgrid.recipients().values()) == {1}
    assert rig.statuses()["failed"] == 100 and rig.statuses()["sent"] == 100
    from failover.web import create_app
    from tests.conftest import AuthActions

    client = create_app(runtime=rig.runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, rig.runtime).login("viewer")
    ready = client.get("/readyz").get_json()
    assert ready["providers"]["circuits"]["twilio"]["state"] == "open"
    assert "twilio looks down" in client.get("/").get_data(as_text=True)


def test_7_accepted_but_never_recorded_is_reconciled_not_resent(rig: Rig) -> None:
    """The worker dies after Twilio stored the messages but before it heard back: nothing is sent twice."""
    with_people(rig, 150)
    rig.twilio.hold = 30.0  # Twilio stores each message, then sits on the answer
    rig.beat()
    first = rig.worker("first")
    rig.activate()
    wait_for_messages(rig, 10)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    accepted_unheard = len(rig.twilio.messages)
    rig.twilio.hold = 0.0
    rig.worker("second")
    rig.wait_until_settled(timeout=180)
    rig.assert_everyone_reached_exactly_once()
    # Each message Twilio stored while the first worker waited was found by reconciliation, not sent again.
    assert rig.reconciled_found() >= accepted_unheard >= 10
