"""Guard slots leased in blocks (failover/slotpool.py) on the send loop (failover/sendloop.py).

Several processes and threads lease from one real redis-server (and the
in-process backend); the requests they make never exceed the concurrency cap
at any moment nor the rate in any one-second window, the breaker opens after
its threshold, and a killed holder's slots come back when their lease expires.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.errors import RetryableDeliveryError
from failover.sendloop import SendLoop
from failover.slotpool import SYNC_S
from failover.throttle import CircuitOpen, Exchange, Guard, Limits, LocalBackend, RedisBackend
from tests.services import RedisServer


async def _request(loop: SendLoop, transport: str, seconds: float, spans: list[tuple[float, float]]) -> None:
    assert loop.guard is not None
    async with loop.guard.request(transport):
        started = time.time()
        await asyncio.sleep(seconds)
        spans.append((started, time.time()))


def _burst(guard: Guard, transport: str, count: int, seconds: float) -> list[tuple[float, float]]:
    """``count`` guarded requests of ``seconds`` each, all at once on one send loop; their (start, end)."""
    loop = SendLoop(guard)
    spans: list[tuple[float, float]] = []
    try:
        futures = [loop.submit(_request(loop, transport, seconds, spans)) for _ in range(count)]
        for future in futures:
            future.result(timeout=60)
    finally:
        loop.close()
    return spans


def _worker(url: str, prefix: str, limits: Limits, count: int, seconds: float, out: multiprocessing.Queue) -> None:
    backend = RedisBackend(url, prefix=prefix)
    out.put(_burst(Guard(backend, {"t": limits}), "t", count, seconds))
    backend.close()


def _peak(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _worst_second(spans: list[tuple[float, float]]) -> int:
    starts = sorted(s for s, _ in spans)
    return max(sum(1 for s in starts if first <= s < first + 1.0) for first in starts)


def _processes(server: RedisServer, prefix: str, limits: Limits, workers: int, count: int, seconds: float) -> list:
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = context.Queue()
    procs = [
        context.Process(target=_worker, args=(server.url, prefix, limits, count, seconds, out)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    spans = [span for _ in procs for span in out.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=30)
    return spans


def test_pools_in_several_processes_never_exceed_the_cap(redis_server: RedisServer) -> None:
    redis_server_client = RedisBackend(redis_server.url, prefix="cap")
    redis_server_client.client.flushdb()
    spans = _processes(redis_server, "cap", Limits(max_concurrent=7), workers=3, count=40, seconds=0.03)
    assert len(spans) == 120
    assert _peak(spans) == 7  # never more, and the allowance is used
    redis_server_client.close()


def test_pools_in_several_processes_keep_the_rate_in_every_second(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, prefix="rate")
    backend.client.flushdb()
    spans = _processes(redis_server, "rate", Limits(max_concurrent=20, rate=15), workers=3, count=12, seconds=0.0)
    assert len(spans) == 36
    assert _worst_second(spans) <= 15
    assert max(s for s, _ in spans) - min(s for s, _ in spans) >= 2.0  # 36 at 15/s: more than two seconds
    backend.close()


def test_loops_in_several_threads_share_the_cap(backend: LocalBackend | RedisBackend) -> None:
    """Two send loops in one process (two holders) on one backend: the cap is shared, both get slots."""
    limits = Limits(max_concurrent=4)
    results: list[list[tuple[float, float]]] = []
    import threading

    threads = [
        threading.Thread(target=lambda: results.append(_burst(Guard(backend, {"t": limits}), "t", 30, 0.02)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = [span for result in results for span in result]
    assert len(spans) == 60 and _peak(spans) <= 4


def test_the_breaker_opens_after_the_threshold(backend: LocalBackend | RedisBackend) -> None:
    guard = Guard(backend, {"t": Limits(max_concurrent=5, breaker_threshold=3, breaker_cooldown=30)})
    loop = SendLoop(guard)

    async def failing() -> str:
        assert loop.guard is not None
        try:
            async with loop.guard.request("t"):
                raise RetryableDeliveryError("down", code="503", maybe_sent=False)
        except CircuitOpen:
            return "open"
        except RetryableDeliveryError:
            return "failed"

    try:
        outcomes = [loop.submit(failing()).result(timeout=10) for _ in range(3)]
        time.sleep(0.1)  # the third report travels to the backend
        outcomes += [loop.submit(failing()).result(timeout=10) for _ in range(2)]
    finally:
        loop.close()
    assert outcomes == ["failed", "failed", "failed", "open", "open"]
    assert guard.circuits()["t"].open


def test_an_idle_pool_gives_its_slots_back(backend: LocalBackend | RedisBackend) -> None:
    limits = Limits(max_concurrent=3)
    _burst(Guard(backend, {"t": limits}), "t", 6, 0.01)  # closed: everything returned
    loop = SendLoop(Guard(backend, {"t": limits}))
    try:
        loop.submit(_request(loop, "t", 0.0, [])).result(timeout=10)
        time.sleep(SYNC_S * 4)  # no demand left here: the idle slot goes back
        block = backend.exchange("t", limits, Exchange("other", want_slots=3))
        assert len(block.slots) == 3
    finally:
        loop.close()


def _hold_and_die(url: str, prefix: str, ttl: float) -> None:
    backend = RedisBackend(url, prefix=prefix)
    backend.lease_ttl = ttl
    block = backend.exchange("t", Limits(max_concurrent=4, rate=10), Exchange("doomed", want_slots=4, want_tokens=4))
    assert len(block.slots) == 4 and len(block.tokens) == 4
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_holders_slots_expire(redis_server: RedisServer) -> None:
    limits = Limits(max_concurrent=4, rate=10)
    backend = RedisBackend(redis_server.url, prefix="killed")
    backend.client.flushdb()
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_hold_and_die, args=(redis_server.url, "killed", 1.0))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert backend.exchange("t", limits, Exchange("me", want_slots=1)).reason == "busy"
    time.sleep(2.1)  # a dead holder never renews: its leases end after 1 s, its tokens a second later
    block = backend.exchange("t", limits, Exchange("me", want_slots=4, want_tokens=10, idle_slots=6))
    assert len(block.slots) == 4
    assert len(block.tokens) == 10  # its unused tokens left the window too
    backend.close()


def test_no_tokens_without_slots_to_use_them(backend: LocalBackend | RedisBackend) -> None:
    """A holder refused slots gets no rate tokens either: idle tokens it cannot use would starve the holder
    of the slots (each waiting for the other, for ever)."""
    limits = Limits(max_concurrent=2, rate=10)
    assert len(backend.exchange("t", limits, Exchange("a", want_slots=2, want_tokens=2)).tokens) == 2
    refused = backend.exchange("t", limits, Exchange("b", want_slots=3, want_tokens=3))
    assert refused.slots == () and refused.tokens == () and refused.reason == "busy"
    again = backend.exchange("t", limits, Exchange("a", 2, want_tokens=5, idle_slots=1))
    assert len(again.tokens) == 1  # one idle slot waits for a token: one token


def test_a_lease_that_is_renewed_does_not_expire(redis_server: RedisServer) -> None:
    limits = Limits(max_concurrent=2)
    backend = RedisBackend(redis_server.url, prefix="renew")
    backend.client.flushdb()
    backend.lease_ttl = 0.5
    held = backend.exchange("t", limits, Exchange("a", want_slots=2)).slots
    # Renewed for longer than the lease set's own expiry (twice the lease) with no new grant in between: the
    # set must live as long as a lease in it is renewed, or the cap would be handed out again (seen at 100,000).
    for _ in range(8):
        time.sleep(0.2)
        assert backend.exchange("t", limits, Exchange("a", keep=list(held))).lost == ()
    assert backend.exchange("t", limits, Exchange("b", want_slots=1)).reason == "busy"
    time.sleep(0.6)  # not renewed any more: expired
    assert len(backend.exchange("t", limits, Exchange("b", want_slots=2)).slots) == 2
    assert backend.exchange("t", limits, Exchange("a", keep=list(held))).lost == held
    backend.close()


operations = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["want", "give", "spend"]), st.integers(1, 6)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_exchanges_never_grant_beyond_the_cap_or_the_rate(redis_server: RedisServer, ops: list) -> None:
    """Any sequence of leases, returns and spent tokens by three holders: what is held never exceeds the cap,
    and tokens granted within one second never exceed the rate (a token counts from its grant)."""
    limits = Limits(max_concurrent=5, rate=8)
    backend = RedisBackend(redis_server.url, prefix="prop")
    backend.client.flushdb()
    slots: dict[str, list[str]] = {h: [] for h in "abc"}
    tokens: dict[str, list[str]] = {h: [] for h in "abc"}
    granted_at: list[float] = []
    seq = 0
    try:
        for holder, op, n in ops:
            request = Exchange(holder, seq)
            if op == "want":
                request.want_slots = request.want_tokens = n
                seq += n
            elif op == "give":
                request.give_slots, slots[holder] = slots[holder][:n], slots[holder][n:]
            else:
                spent, tokens[holder] = tokens[holder][:n], tokens[holder][n:]
                request.spent = [(t, 0.0) for t in spent]
            block = backend.exchange("t", limits, request)
            slots[holder] += block.slots
            tokens[holder] += block.tokens
            granted_at += [time.monotonic()] * len(block.tokens)
            assert sum(len(s) for s in slots.values()) <= limits.max_concurrent
            now = time.monotonic()
            assert sum(1 for at in granted_at if now - at < 1.0) <= limits.rate
    finally:
        backend.close()


def test_a_holder_wants_while_its_waiters_are_unmet_even_when_it_asks_for_nothing(
    backend: LocalBackend | RedisBackend,
) -> None:
    """Fairness is told by unmet demand, not by what was asked: a pool capped at its share asks for no slots but
    still wants, so the other stays capped; once its waiters are served the other may take the whole allowance."""
    limits = Limits(max_concurrent=10)
    a = backend.exchange("twilio", limits, Exchange("a", want_slots=10, unmet=10))
    assert len(a.slots) == 10
    refused = backend.exchange("twilio", limits, Exchange("b", want_slots=5, unmet=5))
    assert refused.slots == () and refused.reason == "busy"
    assert backend.exchange("twilio", limits, Exchange("a", 10)).wanting == 1  # b wants
    capped = backend.exchange("twilio", limits, Exchange("b", 5, unmet=5))  # asks for nothing (at its share): wants
    assert capped.wanting == 0 and capped.slots == ()
    assert backend.exchange("twilio", limits, Exchange("a", 10)).wanting == 1  # so b still counts
    backend.exchange("twilio", limits, Exchange("b", 5, unmet=0))  # b's waiters are gone
    assert backend.exchange("twilio", limits, Exchange("a", 10)).wanting == 0
