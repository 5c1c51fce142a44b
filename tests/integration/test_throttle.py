"""Provider guards: shared concurrency and rate limits, AIMD on 429, the circuit breaker.

The in-process backend is driven with freezegun; both backends (the Redis one
against a real redis-server) are also run with real threads.
"""

from __future__ import annotations

import threading
import time

import pytest
from freezegun import freeze_time

from failover.errors import PermanentDeliveryError, RetryableDeliveryError
from failover.throttle import CircuitOpen, Grant, Guard, Limits, LocalBackend, RedisBackend


def test_local_rate_window_with_a_frozen_clock() -> None:
    backend, limits = LocalBackend(), Limits(rate=3)
    with freeze_time("2026-11-28 09:00:00") as clock:
        assert [backend.acquire("t", f"l{i}", limits) for i in range(3)] == [Grant("")] * 3
        assert backend.acquire("t", "l3", limits) == Grant("rate", pytest.approx(0.1))  # all in flight
        backend.release("t", "l1", limits, "ok")
        backend.release("t", "l2", limits, "ok")  # answered at once: they count until 1.0
        clock.tick(0.4)
        backend.release("t", "l0", limits, "ok")  # l0's answer arrives now: it counts until 1.4
        assert backend.acquire("t", "l4", limits).reason == "rate"
        clock.tick(0.6)
        assert backend.acquire("t", "l5", limits) == Grant("")  # l1 and l2 are a second old
        backend.release("t", "l5", limits, "ok")
        assert backend.acquire("t", "l6", limits) == Grant("")
        backend.release("t", "l6", limits, "ok")
        assert backend.acquire("t", "l7", limits).reason == "rate"  # l0 counts until 1.4
        clock.tick(0.4)
        assert backend.acquire("t", "l7", limits) == Grant("")


def test_local_breaker_opens_cools_down_and_probes_once() -> None:
    backend, limits = LocalBackend(), Limits(breaker_threshold=3, breaker_cooldown=30)
    guard = Guard(backend, {"t": limits})
    with freeze_time("2026-11-28 09:00:00") as clock:
        for _ in range(3):
            with pytest.raises(RetryableDeliveryError), guard.request("t"):
                raise RetryableDeliveryError("down", code="503", maybe_sent=True)
        state = guard.circuits()["t"]
        assert state.open and state.failures == 3 and state.retry_in == pytest.approx(30)
        with pytest.raises(CircuitOpen) as caught:
            with guard.request("t"):
                pass
        assert caught.value.code == "circuit_open" and caught.value.retry_after == pytest.approx(30)
        clock.tick(31)
        assert backend.acquire("t", "probe", limits) == Grant("")  # one probe after the cool-down...
        assert backend.acquire("t", "other", limits).reason == "open"  # ...and only one
        backend.release("t", "probe", limits, "answered")  # any answer from the provider closes it
        assert not guard.circuits()["t"].open
        assert backend.acquire("t", "other", limits) == Grant("")


def test_a_failed_probe_opens_the_circuit_again(backend: LocalBackend | RedisBackend) -> None:
    limits = Limits(breaker_threshold=1, breaker_cooldown=0.05)
    guard = Guard(backend, {"t": limits})
    with pytest.raises(RetryableDeliveryError), guard.request("t"):
        raise RetryableDeliveryError("refused", code="network", maybe_sent=True)
    assert guard.circuits()["t"].open
    deadline = time.monotonic() + 5
    while backend.acquire("t", "probe", limits).reason == "open":  # the 50 ms cool-down, in real time
        assert time.monotonic() < deadline
    backend.release("t", "probe", limits, "down")
    assert guard.circuits()["t"].open and guard.circuits()["t"].failures == 2


def test_permanent_errors_do_not_trip_the_breaker(backend: LocalBackend | RedisBackend) -> None:
    guard = Guard(backend, {"t": Limits(breaker_threshold=2)})
    for _ in range(5):
        with pytest.raises(PermanentDeliveryError), guard.request("t"):
            raise PermanentDeliveryError("invalid number", code="21211")
    assert not guard.circuits()["t"].open


def test_breaker_state_is_shared(backend: LocalBackend | RedisBackend) -> None:
    limits = {"t": Limits(breaker_threshold=2, breaker_cooldown=60)}
    first, second = Guard(backend, limits), Guard(backend, limits)
    for guard in (first, second):
        with pytest.raises(RetryableDeliveryError), guard.request("t"):
            raise RetryableDeliveryError("refused", code="network", maybe_sent=True)
    with pytest.raises(CircuitOpen):
        with second.request("t"):
            pass


def run_concurrently(guard: Guard, transport: str, count: int, hold: float) -> tuple[int, list[float]]:
    """Send ``count`` requests from 16 threads; return peak concurrency and start times."""
    lock = threading.Lock()
    in_flight = peak = 0
    starts: list[float] = []
    todo = list(range(count))

    def worker() -> None:
        nonlocal in_flight, peak
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            with guard.request(transport):
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                    starts.append(time.monotonic())
                time.sleep(hold)  # the provider's latency
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return peak, starts


def test_concurrency_cap_holds_and_is_used(backend: LocalBackend | RedisBackend) -> None:
    guard = Guard(backend, {"t": Limits(max_concurrent=3)})
    started = time.monotonic()
    peak, starts = run_concurrently(guard, "t", 30, 0.05)
    assert len(starts) == 30 and peak == 3
    # 30 requests of 50 ms, 3 at a time: 0.5 s if every freed slot is taken at once.
    assert time.monotonic() - started < 1.5


def test_rate_cap_holds_in_every_one_second_window(backend: LocalBackend | RedisBackend) -> None:
    guard = Guard(backend, {"t": Limits(rate=20)})
    _, starts = run_concurrently(guard, "t", 45, 0.0)
    starts.sort()
    worst = max(sum(1 for s in starts if first <= s < first + 1.0) for first in starts)
    assert len(starts) == 45 and worst <= 20
    assert starts[-1] - starts[0] >= 2.0  # 45 requests at 20/s need more than two seconds


def test_429_halves_the_allowance_and_successes_restore_it(backend: LocalBackend | RedisBackend) -> None:
    limits = Limits(max_concurrent=8)
    guard = Guard(backend, {"t": limits})
    with pytest.raises(RetryableDeliveryError), guard.request("t"):
        raise RetryableDeliveryError("too many", code="20429")
    held = [f"h{i}" for i in range(8)]
    taken = [lease for lease in held if backend.acquire("t", lease, limits) == Grant("")]
    assert len(taken) == 4  # 8 halved
    for lease in taken:
        backend.release("t", lease, limits, "ok")  # four successes: back to 8
    taken = [lease for lease in held if backend.acquire("t", lease, limits) == Grant("")]
    assert len(taken) == 8


def test_unlisted_transports_pass_straight_through(backend: LocalBackend | RedisBackend) -> None:
    guard = Guard(backend, {})
    peak, starts = run_concurrently(guard, "outbox", 40, 0.005)
    assert len(starts) == 40 and peak > 3


def test_an_unreachable_redis_means_do_not_send() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RetryableDeliveryError) as caught:
            with Guard(backend, {"t": Limits(max_concurrent=1)}).request("t"):
                pass
        assert caught.value.code == "limiter_unavailable"
    finally:
        backend.close()
