"""Provider guards: global concurrency and rate limits, back-off on 429, a circuit breaker.

One ``Guard`` per process wraps every provider request:

* **concurrency** - at most ``max_concurrent`` requests in flight per transport,
  counted across every worker on every host (leases in a Redis sorted set that
  expire, so a killed worker cannot hold a slot for ever);
* **rate** - at most ``rate`` requests in any one-second window *as the
  provider counts them*, on arrival. We cannot see arrival, only that it lies
  between our grant and the answer, so a request occupies the window from its
  grant until one second after its answer (a sliding window log in Redis,
  scored by the Redis server's clock). That is exact whatever the delay
  between grant and arrival (a new TLS connection, a busy interpreter), at the
  cost of counting each request's latency against the rate;
* **slow down on 429 / 20429** - the allowed concurrency is halved and then
  grows back by one per success (additive increase, multiplicative decrease);
  the throttled message itself waits for Retry-After in the ledger;
* **circuit breaker** - after ``breaker_threshold`` consecutive failures that
  suggest the provider is down (timeouts, refused connections, 5xx), requests
  stop for ``breaker_cooldown`` seconds; then one probe is let through.

In the embedded mode the same rules hold inside the one worker process
(``LocalBackend``); in production they live in Redis (``RedisBackend``). This
replaces Celery's ``rate_limit``, which is per worker.
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
from typing import Protocol

from failover.errors import DeliveryError, RetryableDeliveryError

log = logging.getLogger(__name__)

LEASE_TTL_S = 60.0  # longer than any provider request timeout
WINDOW_S = 1.0
MAX_WAIT_S = 20.0  # longer than this, give the row back to the ledger instead of blocking a worker
_DOWN_CODES = frozenset({"timeout", "network", "500", "502", "503", "504", "internal"})


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 0  # 0 = unlimited
    rate: float = 0.0  # requests per second; 0 = unlimited
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0


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
    def try_acquire(self, transport: str, lease: str, limits: Limits) -> float:
        """Take a slot: 0 when taken, else how many seconds to wait before asking again."""

    def release(self, transport: str, lease: str) -> None: ...

    def record(self, transport: str, limits: Limits, *, ok: bool, throttled: bool, down: bool) -> None: ...

    def circuit(self, transport: str, limits: Limits) -> CircuitState: ...

    def allow_probe(self, transport: str, limits: Limits) -> bool:
        """While open and cooled down, let exactly one request through to probe."""


class CircuitOpen(RetryableDeliveryError):
    def __init__(self, transport: str, retry_in: float) -> None:
        super().__init__(
            f"{transport} circuit open: not calling a provider that is down", code="circuit_open", retry_after=retry_in
        )


class Guard:
    """Wrap provider requests: ``with guard.request(transport): channel.send(...)``."""

    def __init__(self, backend: Backend, limits: dict[str, Limits]) -> None:
        self.backend = backend
        self.limits = limits

    def _limits(self, transport: str) -> Limits:
        return self.limits.get(transport, Limits(breaker_threshold=0))

    @contextlib.contextmanager
    def request(self, transport: str) -> Iterator[None]:
        limits = self._limits(transport)
        probe = self._may_call(transport, limits, probe=False)
        lease = uuid.uuid4().hex
        deadline = time.monotonic() + MAX_WAIT_S
        while True:
            wait = self.backend.try_acquire(transport, lease, limits)
            if wait <= 0:
                try:  # the circuit may have opened while we waited for the slot
                    self._may_call(transport, limits, probe=probe)
                except CircuitOpen:
                    self.backend.release(transport, lease)
                    raise
                break
            if time.monotonic() + wait > deadline:
                raise RetryableDeliveryError(
                    f"{transport} busy: no free slot within {MAX_WAIT_S:.0f}s", code="throttled", retry_after=wait
                )
            time.sleep(min(wait, 1.0) * random.uniform(0.8, 1.2))  # jitter: waiters do not stampede
        try:
            yield
        except DeliveryError as exc:
            self._outcome(transport, limits, exc)
            raise
        else:
            self.backend.record(transport, limits, ok=True, throttled=False, down=False)
        finally:
            self.backend.release(transport, lease)

    def _may_call(self, transport: str, limits: Limits, *, probe: bool) -> bool:
        """Raise CircuitOpen unless the circuit is closed or this request is (or becomes) the probe."""
        state = self.backend.circuit(transport, limits)
        if not state.open or probe:
            return probe
        if self.backend.allow_probe(transport, limits):
            return True
        raise CircuitOpen(transport, state.retry_in)

    def _outcome(self, transport: str, limits: Limits, exc: DeliveryError) -> None:
        throttled = exc.code in {"429", "20429"}
        down = isinstance(exc, RetryableDeliveryError) and exc.code in _DOWN_CODES
        self.backend.record(transport, limits, ok=not (throttled or down), throttled=throttled, down=down)

    def circuits(self) -> dict[str, CircuitState]:
        return {transport: self.backend.circuit(transport, limits) for transport, limits in self.limits.items()}


# -- in-process backend (embedded mode) -------------------------------------------


@dataclass
class _Local:
    leases: set[str] = field(default_factory=set)
    window: dict[str, float] = field(default_factory=dict)  # lease -> grant, then answer time
    allowed: float = 0.0  # current concurrency allowance (AIMD); 0 = not yet initialised
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class LocalBackend:
    """The same rules, for the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, _Local] = {}

    def _get(self, transport: str, limits: Limits) -> _Local:
        state = self._state.setdefault(transport, _Local())
        if not state.allowed:
            state.allowed = float(limits.max_concurrent)
        return state

    def try_acquire(self, transport: str, lease: str, limits: Limits) -> float:
        now = time.monotonic()
        with self._lock:
            state = self._get(transport, limits)
            if limits.max_concurrent and len(state.leases) >= max(1, int(state.allowed)):
                return 0.005
            if limits.rate:
                for key in [k for k, stamp in state.window.items() if now - stamp >= WINDOW_S]:
                    del state.window[key]
                if len(state.window) >= limits.rate:
                    return max(0.001, WINDOW_S - (now - min(state.window.values())))
                state.window[lease] = now
            state.leases.add(lease)
            return 0.0

    def release(self, transport: str, lease: str) -> None:
        with self._lock:
            state = self._state.get(transport)
            if state is not None:
                state.leases.discard(lease)
                if lease in state.window:
                    state.window[lease] = time.monotonic()  # occupy until a second after the answer

    def record(self, transport: str, limits: Limits, *, ok: bool, throttled: bool, down: bool) -> None:
        with self._lock:
            state = self._get(transport, limits)
            state.probing = False
            if throttled and limits.max_concurrent:
                state.allowed = max(1.0, state.allowed / 2)
            elif ok and limits.max_concurrent:
                state.allowed = min(float(limits.max_concurrent), state.allowed + 1)
            if down:
                state.failures += 1
                if limits.breaker_threshold and state.failures >= limits.breaker_threshold:
                    state.open_until = time.monotonic() + limits.breaker_cooldown
            elif ok:
                state.failures, state.open_until = 0, 0.0

    def circuit(self, transport: str, limits: Limits) -> CircuitState:
        with self._lock:
            state = self._get(transport, limits)
            return CircuitState(
                transport, state.open_until > 0, state.failures, max(0.0, state.open_until - time.monotonic())
            )

    def allow_probe(self, transport: str, limits: Limits) -> bool:
        with self._lock:
            state = self._get(transport, limits)
            if state.open_until > time.monotonic() or state.probing:
                return False
            state.probing = True
            return True


# -- Redis backend (production: shared by every worker on every host) ----------------

_ACQUIRE = """
local leases, window, allowed_key = KEYS[1], KEYS[2], KEYS[3]
local lease, max_conc, rate, ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local window_ms = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
  if allowed < 1 then allowed = 1 end
  if redis.call('ZCARD', leases) >= math.floor(allowed) then return 5 end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
  if redis.call('ZCARD', window) >= rate then
    local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window_ms - now)
  end
  redis.call('ZADD', window, now, lease)
  redis.call('PEXPIRE', window, window_ms * 2)
end
redis.call('ZADD', leases, now + ttl_ms, lease)
redis.call('PEXPIRE', leases, ttl_ms * 2)
return 0
"""

_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1])
return 0
"""

_RECORD = """
local allowed_key, breaker = KEYS[1], KEYS[2]
local max_conc, throttled, ok, down = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3] == '1', ARGV[4] == '1'
local threshold, cooldown_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HDEL', breaker, 'probe')
if max_conc > 0 then
  local allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
  if throttled then allowed = math.max(1, allowed / 2) elseif ok then allowed = math.min(max_conc, allowed + 1) end
  redis.call('SET', allowed_key, allowed, 'PX', 600000)
end
if down then
  local failures = redis.call('HINCRBY', breaker, 'failures', 1)
  if threshold > 0 and failures >= threshold then redis.call('HSET', breaker, 'open_until', now + cooldown_ms) end
  redis.call('PEXPIRE', breaker, 3600000)
elseif ok then
  redis.call('DEL', breaker)
end
return 0
"""

_PROBE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or 0)
if open_until > now then return 0 end
if redis.call('HSETNX', KEYS[1], 'probe', now) == 1 then
  redis.call('PEXPIRE', KEYS[1], 3600000)
  return 1
end
local started = tonumber(redis.call('HGET', KEYS[1], 'probe'))
if now - started > tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'probe', now) return 1 end
return 0
"""


class RedisBackend:
    def __init__(self, url: str, prefix: str = "failover:guard") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=3)
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._record = self.client.register_script(_RECORD)
        self._probe = self.client.register_script(_PROBE)

    def _keys(self, transport: str) -> tuple[str, str, str, str]:
        base = f"{self.prefix}:{transport}"
        return f"{base}:leases", f"{base}:window", f"{base}:allowed", f"{base}:breaker"

    def try_acquire(self, transport: str, lease: str, limits: Limits) -> float:
        leases, window, allowed, _ = self._keys(transport)
        try:
            waited = self._acquire(
                keys=[leases, window, allowed],
                args=[lease, limits.max_concurrent, limits.rate, int(LEASE_TTL_S * 1000), int(WINDOW_S * 1000)],
            )
        except Exception as exc:  # redis errors: the limiter is unavailable, so do not send
            raise RetryableDeliveryError(
                f"rate limiter unavailable: {type(exc).__name__}", code="limiter_unavailable"
            ) from None
        return float(waited) / 1000.0

    def release(self, transport: str, lease: str) -> None:
        leases, window, _, _ = self._keys(transport)
        try:
            self._release(keys=[leases, window], args=[lease])
        except Exception:  # the lease expires by itself
            log.warning("could not release a %s slot; it expires in %ss", transport, LEASE_TTL_S)

    def record(self, transport: str, limits: Limits, *, ok: bool, throttled: bool, down: bool) -> None:
        _, _, allowed, breaker = self._keys(transport)
        try:
            self._record(
                keys=[allowed, breaker],
                args=[
                    limits.max_concurrent,
                    int(throttled),
                    int(ok),
                    int(down),
                    limits.breaker_threshold,
                    int(limits.breaker_cooldown * 1000),
                ],
            )
        except Exception:
            log.warning("could not record a %s outcome in the shared limiter", transport)

    def circuit(self, transport: str, limits: Limits) -> CircuitState:
        breaker = self._keys(transport)[3]
        try:
            values = self.client.hmget(breaker, "failures", "open_until")
            now_s, now_us = self.client.time()
        except Exception:
            return CircuitState(transport, False, 0)
        failures = int(values[0] or 0)
        open_until = int(values[1] or 0) / 1000.0
        now = now_s + now_us / 1e6
        # Open from the moment the threshold tripped until a success clears the key.
        return CircuitState(transport, open_until > 0, failures, max(0.0, open_until - now))

    def allow_probe(self, transport: str, limits: Limits) -> bool:
        try:
            return bool(self._probe(keys=[self._keys(transport)[3]], args=[int(LEASE_TTL_S * 1000)]))
        except Exception:
            return False

    def close(self) -> None:
        self.client.close()
