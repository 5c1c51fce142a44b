"""Provider guards: global concurrency and rate limits, back-off on 429, a circuit breaker.

One ``Guard`` per process wraps every provider request (``with guard.request("twilio"): ...``):

* **concurrency** - at most ``max_concurrent`` requests in flight per transport,
  counted across every worker on every host (leases in a Redis sorted set that
  expire, so a killed worker cannot hold a slot for ever). A thread waiting for
  a slot is woken when one is released, not by polling;
* **rate** - at most ``rate`` requests in any one-second window *as the
  provider counts them*, on arrival. We cannot see arrival, only that it lies
  between our grant and the answer, so a request occupies the window from its
  grant until one second after its answer (while in flight it is scored at
  its lease's expiry, so a dead worker's entries still age out). That is exact
  whatever the delay between grant and arrival (a new TLS connection, a busy
  interpreter), at the cost of counting each request's latency against the rate;
* **slow down on 429 / 20429** - the allowed concurrency is halved and grows
  back by one per success (additive increase, multiplicative decrease); the
  throttled message itself waits for Retry-After in the ledger;
* **circuit breaker** - after ``breaker_threshold`` consecutive failures that
  suggest the provider is down (timeouts, refused connections, 5xx), requests
  stop for ``breaker_cooldown`` seconds; then one probe is let through, and any
  answer from the provider (even a 400) closes the circuit again.

Each request costs two calls to the backend: ``acquire`` (circuit, concurrency
and rate in one step) and ``release`` (which also records the outcome). In the
embedded mode the same rules hold inside the one worker process
(``LocalBackend``); in production they live in Redis (``RedisBackend``, one Lua
script per call, scored by the Redis server's clock). This replaces Celery's
``rate_limit``, which is per worker.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from failover import metrics
from failover.domain import providers
from failover.errors import DeliveryError, RetryableDeliveryError

log = logging.getLogger(__name__)

LEASE_TTL_S = 60.0  # longer than any provider request timeout
WINDOW_S = 1.0
MAX_WAIT_S = 20.0  # longer than this, give the row back to the ledger instead of blocking a worker
BUSY_WAIT_S = 0.1  # longest nap while waiting to be woken for a free slot
_DOWN_CODES = frozenset({"timeout", "network", "500", "502", "503", "504", "internal"})

Outcome = Literal["ok", "throttled", "down", "answered", "unused"]


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 0  # 0 = unlimited
    rate: float = 0.0  # requests per second; 0 = unlimited
    breaker_threshold: int = 5  # 0 = no breaker
    breaker_cooldown: float = 30.0


class Grant(NamedTuple):
    """``reason`` is "" when granted, else why not: "busy" (no slot), "rate" or "open" (circuit)."""

    reason: str
    wait: float = 0.0


@dataclass
class CircuitState:
    transport: str
    open: bool
    failures: int
    retry_in: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "state": "open" if self.open else "closed",
            "failures": self.failures,
            "retry_in_s": round(self.retry_in, 1),
        }


class Backend(Protocol):
    def acquire(self, transport: str, lease: str, limits: Limits) -> Grant: ...

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> None: ...

    def wait_for_release(self, transport: str, timeout: float) -> None: ...

    def circuit(self, transport: str, limits: Limits) -> CircuitState: ...


class CircuitOpen(RetryableDeliveryError):
    def __init__(self, transport: str, retry_in: float) -> None:
        super().__init__(
            f"{transport} circuit open: not calling a provider that is down",
            code="circuit_open",
            retry_after=retry_in,
        )


def outcome_of(exc: DeliveryError, transport: str = "") -> Outcome:
    if exc.code in {"429", "20429"}:
        return "throttled"
    if isinstance(exc, RetryableDeliveryError) and exc.code in _DOWN_CODES:
        return "down"
    if providers.provider_failing(transport, exc.code):  # suspended, out of credit: as good as down
        return "down"
    return "answered"  # the provider answered (a 400, an invalid number): it is up


class Guard:
    """Wrap provider requests: ``with guard.request(transport): channel.send(...)``."""

    def __init__(self, backend: Backend, limits: dict[str, Limits]) -> None:
        self.backend = backend
        self.limits = limits

    @contextlib.contextmanager
    def request(self, transport: str) -> Iterator[None]:
        limits = self.limits.get(transport)
        if limits is None:  # outbox, status page: nothing to protect
            yield
            return
        lease = uuid.uuid4().hex
        deadline = time.monotonic() + MAX_WAIT_S
        while True:
            grant = self.backend.acquire(transport, lease, limits)
            if not grant.reason:
                break
            if grant.reason == "open":
                metrics.circuit_refused(transport)
                raise CircuitOpen(transport, grant.wait)
            if time.monotonic() + min(grant.wait, BUSY_WAIT_S) > deadline:
                raise RetryableDeliveryError(
                    f"{transport} busy: no free slot within {MAX_WAIT_S:.0f}s",
                    code="throttled",
                    retry_after=grant.wait,
                )
            if grant.reason == "busy":
                self.backend.wait_for_release(transport, min(grant.wait, BUSY_WAIT_S))
            else:
                time.sleep(grant.wait * random.uniform(1.0, 1.1))  # jitter: waiters do not stampede
        outcome: Outcome = "unused"
        started = time.monotonic()
        try:
            yield
            outcome = "ok"
        except DeliveryError as exc:
            outcome = outcome_of(exc, transport)
            raise
        finally:
            self.backend.release(transport, lease, limits, outcome)
            metrics.provider_request(transport, outcome, time.monotonic() - started)

    def circuits(self) -> dict[str, CircuitState]:
        return {transport: self.backend.circuit(transport, limits) for transport, limits in self.limits.items()}


# -- in-process backend (embedded mode) -------------------------------------------


@dataclass
class _Local:
    leases: set[str] = field(default_factory=set)
    window: dict[str, float] = field(default_factory=dict)  # lease -> lease end while in flight, then answer time
    allowed: float = 0.0  # current concurrency allowance (AIMD); 0 = not yet initialised
    failures: int = 0
    open_until: float = 0.0  # > 0 while the circuit is open
    probe: str | None = None


class LocalBackend:
    """The same rules, for the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._state: dict[str, _Local] = {}

    def _get(self, transport: str, limits: Limits) -> _Local:
        state = self._state.setdefault(transport, _Local())
        if not state.allowed:
            state.allowed = float(limits.max_concurrent)
        return state

    def acquire(self, transport: str, lease: str, limits: Limits) -> Grant:
        now = time.monotonic()
        with self._lock:
            state = self._get(transport, limits)
            probe = False
            if state.open_until:
                if now < state.open_until or state.probe is not None:
                    return Grant("open", max(0.0, state.open_until - now))
                probe = True
            if limits.max_concurrent and len(state.leases) >= max(1, int(state.allowed)):
                return Grant("busy", BUSY_WAIT_S)
            if limits.rate:
                for key in [k for k, stamp in state.window.items() if now - stamp >= WINDOW_S]:
                    del state.window[key]
                if len(state.window) >= limits.rate:
                    return Grant("rate", min(0.1, max(0.001, WINDOW_S - (now - min(state.window.values())))))
                state.window[lease] = now + LEASE_TTL_S
            if probe:
                state.probe = lease
            state.leases.add(lease)
            return Grant("")

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> None:
        now = time.monotonic()
        with self._lock:
            state = self._get(transport, limits)
            state.leases.discard(lease)
            if lease in state.window:
                state.window[lease] = now  # from now on it counts for one more second
            if state.probe == lease:
                state.probe = None
            if outcome == "throttled" and limits.max_concurrent:
                state.allowed = max(1.0, state.allowed / 2)
            elif outcome == "ok" and limits.max_concurrent:
                state.allowed = min(float(limits.max_concurrent), state.allowed + 1)
            if outcome == "down":
                state.failures += 1
                if limits.breaker_threshold and state.failures >= limits.breaker_threshold:
                    state.open_until = now + limits.breaker_cooldown
            elif outcome in ("ok", "answered"):
                state.failures, state.open_until = 0, 0.0
            self._released.notify()

    def wait_for_release(self, transport: str, timeout: float) -> None:
        with self._released:
            self._released.wait(timeout)

    def circuit(self, transport: str, limits: Limits) -> CircuitState:
        with self._lock:
            state = self._get(transport, limits)
            retry_in = max(0.0, state.open_until - time.monotonic())
            return CircuitState(transport, state.open_until > 0, state.failures, retry_in)


# -- Redis backend (production: shared by every worker on every host) ----------------

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_ACQUIRE = (
    _NOW
    + """
local leases, window, allowed_key, breaker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease, max_conc, rate = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl_ms, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local probe = false
local open_until = tonumber(redis.call('HGET', breaker, 'open_until') or 0)
if open_until > 0 then
  if now < open_until then return {'open', open_until - now} end
  local holder = redis.call('HGET', breaker, 'probe')
  if holder and now - tonumber(redis.call('HGET', breaker, 'probe_at') or 0) < ttl_ms then
    return {'open', 1000}
  end
  probe = true
end
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
  if allowed < 1 then allowed = 1 end
  if redis.call('ZCARD', leases) >= math.floor(allowed) then return {'busy', 100} end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
  if redis.call('ZCARD', window) >= rate then
    local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
    return {'rate', math.min(100, math.max(1, tonumber(oldest[2]) + window_ms - now))}
  end
  redis.call('ZADD', window, now + ttl_ms, lease)
  redis.call('PEXPIRE', window, ttl_ms + window_ms * 2)
end
if probe then redis.call('HSET', breaker, 'probe', lease, 'probe_at', now) end
if max_conc > 0 then
  redis.call('ZADD', leases, now + ttl_ms, lease)
  redis.call('PEXPIRE', leases, ttl_ms * 2)
end
return {'', 0}
"""
)

_RELEASE = (
    _NOW
    + """
local leases, window, allowed_key, breaker, woken = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local lease, outcome, max_conc = ARGV[1], ARGV[2], tonumber(ARGV[3])
local threshold, cooldown_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREM', leases, lease)
redis.call('ZADD', window, 'XX', now, lease)
if redis.call('HGET', breaker, 'probe') == lease then redis.call('HDEL', breaker, 'probe', 'probe_at') end
if max_conc > 0 and (outcome == 'ok' or outcome == 'throttled') then
  local allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
  if outcome == 'throttled' then allowed = math.max(1, allowed / 2) else allowed = math.min(max_conc, allowed + 1) end
  redis.call('SET', allowed_key, allowed, 'PX', 600000)
end
if outcome == 'down' then
  local failures = redis.call('HINCRBY', breaker, 'failures', 1)
  if threshold > 0 and failures >= threshold then redis.call('HSET', breaker, 'open_until', now + cooldown_ms) end
  redis.call('PEXPIRE', breaker, 3600000)
elseif outcome == 'ok' or outcome == 'answered' then
  redis.call('DEL', breaker)
end
if max_conc > 0 then
  redis.call('LPUSH', woken, 1)
  redis.call('LTRIM', woken, 0, 63)
  redis.call('PEXPIRE', woken, 5000)
end
return 0
"""
)


class RedisBackend:
    def __init__(self, url: str, prefix: str = "failover:guard") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=3)
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)

    def _keys(self, transport: str) -> list[str]:
        base = f"{self.prefix}:{transport}"
        return [f"{base}:leases", f"{base}:window", f"{base}:allowed", f"{base}:breaker", f"{base}:woken"]

    def acquire(self, transport: str, lease: str, limits: Limits) -> Grant:
        try:
            reason, wait_ms = self._acquire(
                keys=self._keys(transport)[:4],
                args=[lease, limits.max_concurrent, limits.rate, int(LEASE_TTL_S * 1000), int(WINDOW_S * 1000)],
            )
        except Exception as exc:  # redis errors: the limiter is unavailable, so do not send
            raise RetryableDeliveryError(
                f"rate limiter unavailable: {type(exc).__name__}", code="limiter_unavailable"
            ) from None
        return Grant(reason.decode() if isinstance(reason, bytes) else str(reason), float(wait_ms) / 1000.0)

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> None:
        try:
            self._release(
                keys=self._keys(transport),
                args=[
                    lease,
                    outcome,
                    limits.max_concurrent,
                    limits.breaker_threshold,
                    int(limits.breaker_cooldown * 1000),
                ],
            )
        except Exception:  # the lease expires by itself
            log.warning("could not release a %s slot; it expires in %ss", transport, LEASE_TTL_S)

    def wait_for_release(self, transport: str, timeout: float) -> None:
        try:
            self.client.blpop([self._keys(transport)[4]], timeout=timeout)
        except Exception:
            time.sleep(timeout)

    def circuit(self, transport: str, limits: Limits) -> CircuitState:
        try:
            failures, open_until = self.client.hmget(self._keys(transport)[3], "failures", "open_until")
            now_s, now_us = self.client.time()
        except Exception:
            return CircuitState(transport, False, 0)
        until = int(open_until or 0) / 1000.0
        now = now_s + now_us / 1e6
        return CircuitState(transport, until > 0, int(failures or 0), max(0.0, until - now))

    def close(self) -> None:
        self.client.close()
