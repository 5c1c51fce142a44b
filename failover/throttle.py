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

Two ways in. ``Guard.request`` (synchronous callers: reconciliation lookups,
answers to inbound SMS) costs two calls to the backend per request:
``acquire`` (circuit, concurrency and rate in one step) and ``release`` (which
also records the outcome). The dispatcher's send loop leases in blocks instead
(``exchange``, failover/slotpool.py): one call gives back, renews, reports and
leases many slots and rate tokens, under the same rules and the same keys, so
both ways count against one allowance. In the embedded mode the rules hold
inside the one worker process (``LocalBackend``); in production they live in
Redis (``RedisBackend``, one Lua script per call, scored by the Redis server's
clock). This replaces Celery's ``rate_limit``, which is per worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
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


class Block(NamedTuple):
    """What one ``exchange`` gave a slot pool (failover/slotpool.py).

    ``slots`` are concurrency slots (reusable by the holder, request after request), ``tokens`` rate
    tokens (one per request). ``reason`` is "" or why fewer than asked were granted ("busy", "rate",
    "open"); ``wanting`` counts the other holders refused a slot in the last second (fairness);
    ``probe``: the one slot granted is the breaker's probe; ``lost``: held ids that had expired.
    """

    slots: tuple[str, ...]
    tokens: tuple[str, ...]
    reason: str = ""
    wait: float = 0.0
    allowed: float = 0.0
    wanting: int = 0
    probe: bool = False
    lost: tuple[str, ...] = ()


@dataclass
class Exchange:
    """One pool's call to the backend: what it gives back, keeps, reports and wants."""

    holder: str
    seq: int = 0  # new ids are f"{holder}:s{seq + i}" and f"{holder}:t{seq + i}"
    want_slots: int = 0
    want_tokens: int = 0
    keep: list[str] = field(default_factory=list)  # held slots and tokens whose lease is renewed
    give_slots: list[str] = field(default_factory=list)
    give_tokens: list[str] = field(default_factory=list)  # tokens never used
    spent: list[tuple[str, float]] = field(default_factory=list)  # (token, seconds since its answer)
    idle_slots: int = 0  # slots the holder has that wait for a token (tokens are granted only for usable slots)
    unmet: int = 0  # slots its waiters need, before any cap: more than it is granted = it wants (fairness)
    successes: int = 0  # "ok" outcomes since the last exchange (AIMD growth)
    answered: int = 0  # "ok" + "answered": the provider is up (resets the breaker's count)


class Backend(Protocol):
    def acquire(self, transport: str, lease: str, limits: Limits) -> Grant: ...

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> tuple[float, float]: ...

    def exchange(self, transport: str, limits: Limits, request: Exchange) -> Block: ...

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
    wanting: dict[str, float] = field(default_factory=dict)  # holder -> when it was last refused a slot


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

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> tuple[float, float]:
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
            return max(0.0, state.open_until - now) if state.open_until else 0.0, state.allowed

    def exchange(self, transport: str, limits: Limits, request: Exchange) -> Block:
        now = time.monotonic()
        with self._lock:
            state = self._get(transport, limits)
            lost = tuple(i for i in request.keep if i not in state.leases and i not in state.window)
            for key in request.keep:
                if key in state.window:
                    state.window[key] = now + LEASE_TTL_S
            state.leases.difference_update(request.give_slots)
            for token in request.give_tokens:
                state.window.pop(token, None)
            for token, age in request.spent:
                if token in state.window:
                    state.window[token] = now - age  # from its answer on it counts for one more second
            if limits.max_concurrent and request.successes:
                state.allowed = min(float(limits.max_concurrent), state.allowed + request.successes)
            if request.answered and not state.open_until:
                state.failures = 0
            if request.give_slots:
                self._released.notify_all()
            others = sum(1 for h, at in state.wanting.items() if h != request.holder and now - at < WINDOW_S)
            block = self._grant(state, limits, request, now)
            if len(block.slots) < request.unmet:
                state.wanting[request.holder] = now
            else:
                state.wanting.pop(request.holder, None)
            return block._replace(lost=lost, wanting=others)

    def _grant(self, state: _Local, limits: Limits, request: Exchange, now: float) -> Block:
        want_slots, want_tokens = request.want_slots, request.want_tokens if limits.rate else 0
        if not want_slots and not want_tokens:
            return Block((), (), allowed=state.allowed)
        probe = False
        if state.open_until:
            if now < state.open_until or state.probe is not None:
                return Block((), (), "open", max(0.0, state.open_until - now), state.allowed)
            probe, want_slots, want_tokens = True, min(want_slots, 1), min(want_tokens, 1)
        reason, wait = "", 0.0
        if limits.max_concurrent:
            free = max(1, int(state.allowed)) - len(state.leases)
            if free < want_slots:
                want_slots, reason, wait = max(0, free), "busy", BUSY_WAIT_S
        if want_tokens:
            for key in [k for k, stamp in state.window.items() if now - stamp >= WINDOW_S]:
                del state.window[key]
            free = math.ceil(limits.rate) - len(state.window)
            if free < want_tokens:
                want_tokens = max(0, free)
                if not reason:
                    oldest = min(state.window.values()) if state.window else now
                    reason, wait = "rate", min(0.1, max(0.001, WINDOW_S - (now - oldest)))
        want_tokens = min(want_tokens, want_slots + request.idle_slots)  # a token without a slot would block others
        slots = tuple(f"{request.holder}:s{request.seq + i}" for i in range(want_slots))
        tokens = tuple(f"{request.holder}:t{request.seq + i}" for i in range(want_tokens))
        if limits.max_concurrent:
            state.leases.update(slots)
        for token in tokens:
            state.window[token] = now + LEASE_TTL_S
        if probe and slots:
            state.probe = slots[0]
        return Block(slots, tokens, reason, wait, state.allowed, probe=probe and bool(slots))

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
local open_until = tonumber(redis.call('HGET', breaker, 'open_until') or 0)
local allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
return {tostring(math.max(0, open_until - now) / 1000), tostring(allowed)}
"""
)

_EXCHANGE = (
    _NOW
    + """
local leases, window, allowed_key, breaker, woken, wanting = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local holder, seq, want_s, want_t = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local max_conc, rate, ttl_ms, window_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local successes, answered = tonumber(ARGV[9]), tonumber(ARGV[10])
local n_keep, n_give_s = tonumber(ARGV[11]), tonumber(ARGV[12])
local n_give_t, n_spent = tonumber(ARGV[13]), tonumber(ARGV[14])
local idle_slots, unmet = tonumber(ARGV[15]), tonumber(ARGV[16])
local i = 17
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local lost = {}
for k = 1, n_keep do
  local id = ARGV[i]
  i = i + 1
  local a = redis.call('ZADD', leases, 'XX', 'CH', now + ttl_ms, id)
  local b = redis.call('ZADD', window, 'XX', 'CH', now + ttl_ms, id)
  if a == 0 and b == 0 and redis.call('ZSCORE', leases, id) == false and redis.call('ZSCORE', window, id) == false then
    lost[#lost + 1] = id
  end
end
if n_keep > 0 then
  -- the sets live as long as a lease in them is renewed, not only as long after the last grant
  redis.call('PEXPIRE', leases, ttl_ms * 2)
  redis.call('PEXPIRE', window, ttl_ms + window_ms * 2)
end
for k = 1, n_give_s do redis.call('ZREM', leases, ARGV[i]); i = i + 1 end
for k = 1, n_give_t do redis.call('ZREM', window, ARGV[i]); i = i + 1 end
for k = 1, n_spent do
  redis.call('ZADD', window, 'XX', now - tonumber(ARGV[i + 1]), ARGV[i])
  i = i + 2
end
local allowed = max_conc
if max_conc > 0 then
  allowed = tonumber(redis.call('GET', allowed_key) or max_conc)
  if successes > 0 then
    allowed = math.min(max_conc, allowed + successes)
    redis.call('SET', allowed_key, allowed, 'PX', 600000)
  end
  if n_give_s > 0 then
    redis.call('LPUSH', woken, 1)
    redis.call('LTRIM', woken, 0, 63)
    redis.call('PEXPIRE', woken, 5000)
  end
end
local open_until = tonumber(redis.call('HGET', breaker, 'open_until') or 0)
if answered > 0 and open_until == 0 then redis.call('HDEL', breaker, 'failures') end
local others = 0
local seen = redis.call('HGETALL', wanting)
for k = 1, #seen, 2 do
  if now - tonumber(seen[k + 1]) >= window_ms then redis.call('HDEL', wanting, seen[k])
  elseif seen[k] ~= holder then others = others + 1 end
end
if rate <= 0 then want_t = 0 end
if want_s == 0 and want_t == 0 then
  if unmet > 0 then redis.call('HSET', wanting, holder, now); redis.call('PEXPIRE', wanting, 5000)
  else redis.call('HDEL', wanting, holder) end
  return {'', 0, 0, 0, tostring(allowed), others, 0, lost}
end
local probe = 0
if open_until > 0 then
  if now < open_until then return {'open', open_until - now, 0, 0, tostring(allowed), others, 0, lost} end
  local holder_p = redis.call('HGET', breaker, 'probe')
  if holder_p and now - tonumber(redis.call('HGET', breaker, 'probe_at') or 0) < ttl_ms then
    return {'open', 1000, 0, 0, tostring(allowed), others, 0, lost}
  end
  probe = 1
  want_s, want_t = math.min(want_s, 1), math.min(want_t, 1)
end
local reason, wait, n_s, n_t = '', 0, want_s, want_t
if max_conc > 0 then
  local free = math.max(1, math.floor(allowed)) - redis.call('ZCARD', leases)
  if free < n_s then n_s, reason, wait = math.max(0, free), 'busy', 100 end
end
-- a token without a slot to use it would only block the other holders
if n_t > n_s + idle_slots then n_t = n_s + idle_slots end
if n_t > 0 then
  redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
  local free = math.ceil(rate) - redis.call('ZCARD', window)
  if free < n_t then
    n_t = math.max(0, free)
    if reason == '' then
      local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
      reason, wait = 'rate', math.min(100, math.max(1, tonumber(oldest[2]) + window_ms - now))
    end
  end
end
if max_conc > 0 then
  for k = 0, n_s - 1 do redis.call('ZADD', leases, now + ttl_ms, holder .. ':s' .. (seq + k)) end
  redis.call('PEXPIRE', leases, ttl_ms * 2)
end
for k = 0, n_t - 1 do redis.call('ZADD', window, now + ttl_ms, holder .. ':t' .. (seq + k)) end
if n_t > 0 then redis.call('PEXPIRE', window, ttl_ms + window_ms * 2) end
if probe == 1 and n_s > 0 then redis.call('HSET', breaker, 'probe', holder .. ':s' .. seq, 'probe_at', now) end
if n_s < unmet then
  redis.call('HSET', wanting, holder, now)
  redis.call('PEXPIRE', wanting, 5000)
else
  redis.call('HDEL', wanting, holder)
end
return {reason, wait, n_s, n_t, tostring(allowed), others, probe, lost}
"""
)


class RedisBackend:
    def __init__(self, url: str, prefix: str = "failover:guard") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=3)
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._exchange = self.client.register_script(_EXCHANGE)
        self.lease_ttl = LEASE_TTL_S

    def _keys(self, transport: str) -> list[str]:
        base = f"{self.prefix}:{transport}"
        return [
            f"{base}:leases",
            f"{base}:window",
            f"{base}:allowed",
            f"{base}:breaker",
            f"{base}:woken",
            f"{base}:wanting",
        ]

    def acquire(self, transport: str, lease: str, limits: Limits) -> Grant:
        try:
            reason, wait_ms = self._acquire(
                keys=self._keys(transport)[:4],
                args=[lease, limits.max_concurrent, limits.rate, int(self.lease_ttl * 1000), int(WINDOW_S * 1000)],
            )
        except Exception as exc:  # redis errors: the limiter is unavailable, so do not send
            raise RetryableDeliveryError(
                f"rate limiter unavailable: {type(exc).__name__}", code="limiter_unavailable"
            ) from None
        return Grant(reason.decode() if isinstance(reason, bytes) else str(reason), float(wait_ms) / 1000.0)

    def release(self, transport: str, lease: str, limits: Limits, outcome: Outcome) -> tuple[float, float]:
        try:
            open_in, allowed = self._release(
                keys=self._keys(transport)[:5],
                args=[
                    lease,
                    outcome,
                    limits.max_concurrent,
                    limits.breaker_threshold,
                    int(limits.breaker_cooldown * 1000),
                ],
            )
        except Exception:  # the lease expires by itself
            log.warning("could not release a %s slot; it expires in %ss", transport, self.lease_ttl)
            return 0.0, float(limits.max_concurrent)
        return float(open_in), float(allowed)

    def exchange(self, transport: str, limits: Limits, request: Exchange) -> Block:
        """Give back, renew, report and lease in one script: one round trip per block of requests."""
        args: list[str | int | float] = [
            request.holder,
            request.seq,
            request.want_slots,
            request.want_tokens,
            limits.max_concurrent,
            limits.rate,
            int(self.lease_ttl * 1000),
            int(WINDOW_S * 1000),
            request.successes,
            request.answered,
            len(request.keep),
            len(request.give_slots),
            len(request.give_tokens),
            len(request.spent),
            request.idle_slots,
            request.unmet,
            *request.keep,
            *request.give_slots,
            *request.give_tokens,
        ]
        for token, age in request.spent:
            args += [token, int(age * 1000)]
        try:
            reason, wait_ms, n_slots, n_tokens, allowed, wanting, probe, lost = self._exchange(
                keys=self._keys(transport), args=args
            )
        except Exception as exc:  # redis errors: the limiter is unavailable, so do not send
            raise RetryableDeliveryError(
                f"rate limiter unavailable: {type(exc).__name__}", code="limiter_unavailable"
            ) from None
        holder, seq = request.holder, request.seq
        return Block(
            tuple(f"{holder}:s{seq + i}" for i in range(int(n_slots))),
            tuple(f"{holder}:t{seq + i}" for i in range(int(n_tokens))),
            reason.decode() if isinstance(reason, bytes) else str(reason),
            float(wait_ms) / 1000.0,
            float(allowed),
            int(wanting),
            bool(probe),
            tuple(x.decode() if isinstance(x, bytes) else str(x) for x in lost),
        )

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
