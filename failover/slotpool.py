"""A worker's share of a provider's guard, leased in blocks, for the send loop (failover/sendloop.py).

The guard's rules (failover/throttle.py) are shared by every worker through the
backend; asking it once per request cost a quarter of a worker's CPU. A
``SlotPool`` lives on the send loop, one per transport, and talks to the backend
in *exchanges* (``Backend.exchange``: one Redis script call) that each give back,
renew, report and lease many slots at once:

* **concurrency slots** are leased k at a time and reused by this worker request
  after request, so the shared count never exceeds the allowance: a slot is in
  the backend's lease set from its grant until it is given back (or expires,
  ``LEASE_TTL_S`` after its last renewal, when the worker died);
* **rate tokens** are one per request. A token enters the backend's window when
  it is leased, scored at its lease's expiry, and is re-scored at its request's
  answer when the pool settles it: the same conservative window as one request
  at a time (a request counts from its grant until a second after its answer),
  only granted earlier. A token never used is removed;
* successes (the AIMD growth, the breaker's count reset) are reported in the next
  exchange; a 429 or a "provider down" outcome at once (``Backend.release``), so
  the allowance halves and the breaker opens as fast as before; the breaker's
  probe is one slot used once and reported at once;
* fairness: slots nobody here waits for are given back at the next exchange
  (every ``SYNC_S``), and while other workers have waiters they cannot serve
  (``Exchange.unmet``) this one holds, and asks for, no more than its share of
  the allowance: the slots it gives back go to them, not back to itself.

Everything here runs on the loop's thread; backend calls go to one helper thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass

from failover import metrics
from failover.errors import DeliveryError, RetryableDeliveryError
from failover.throttle import (
    BUSY_WAIT_S,
    LEASE_TTL_S,
    MAX_WAIT_S,
    Backend,
    Block,
    CircuitOpen,
    Exchange,
    Limits,
    Outcome,
)

log = logging.getLogger(__name__)

SYNC_S = 0.05  # how often held slots are settled, renewed and, when idle, given back
SETTLE_EVERY = 32  # settle sooner when this many tokens have been spent
RENEW_S = LEASE_TTL_S / 4
RETRY_S = 0.02  # a refused lease is asked again after at most this long


@dataclass
class Ticket:
    slot: str
    token: str | None
    probe: bool = False


class SlotPool:
    def __init__(self, backend: Backend, transport: str, limits: Limits, executor: Executor) -> None:
        self.backend = backend
        self.transport = transport
        self.limits = limits
        self.executor = executor
        self.holder = uuid.uuid4().hex[:16]
        self._seq = 0
        self.idle_slots: list[str] = []
        self.idle_tokens: list[str] = []
        self.busy: set[str] = set()  # slots in use
        self.in_flight_tokens: set[str] = set()
        self.spent: list[tuple[str, float]] = []  # (token, monotonic time of its answer)
        self.give_slots: list[str] = []
        self.give_tokens: list[str] = []
        self.successes = 0
        self.answered = 0
        self.excess = 0  # slots to give back when they come free instead of reusing them
        self.share = 0  # while other workers are refused slots: the most this one holds (0: no limit)
        self.open_until = 0.0
        self.probe_slot: str | None = None
        self.waiters: deque[asyncio.Future[Ticket]] = deque()
        self._wake = asyncio.Event()
        self._renewed = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def held(self) -> int:
        return len(self.idle_slots) + len(self.busy)

    # -- the request side -------------------------------------------------------------

    async def acquire(self) -> Ticket:
        now = time.monotonic()
        if self.open_until > now:
            metrics.circuit_refused(self.transport)
            raise CircuitOpen(self.transport, self.open_until - now)
        while self.waiters and self.waiters[0].done():  # timed out or failed
            self.waiters.popleft()
        if not self.waiters:
            ticket = self._take()
            if ticket is not None:
                return ticket
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ticket] = loop.create_future()
        self.waiters.append(future)
        self._ensure_running()
        self._wake.set()
        timer = loop.call_later(MAX_WAIT_S, _expire, future, self.transport)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as the caller was cancelled
                self.release(future.result(), "unused")
            raise
        finally:
            timer.cancel()

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """A request is over: its slot serves the next one here, its token is settled at the next exchange."""
        now = time.monotonic()
        self.busy.discard(ticket.slot)
        if ticket.token is not None:
            self.in_flight_tokens.discard(ticket.token)
            if outcome == "unused":
                self.idle_tokens.append(ticket.token)
            else:
                self.spent.append((ticket.token, now))
        if ticket.probe or outcome in ("throttled", "down"):
            # The breaker and AIMD must hear this at once; the slot goes back with the report.
            self._ensure_running()
            asyncio.get_running_loop().create_task(self._report(ticket.slot, outcome))
        else:
            if outcome == "ok":
                self.successes += 1
            if outcome in ("ok", "answered"):
                self.answered += 1
            if self.excess > 0:
                self.excess -= 1
                self.give_slots.append(ticket.slot)
            else:
                self.idle_slots.append(ticket.slot)
        self._serve()
        if len(self.spent) >= SETTLE_EVERY or self.give_slots:
            self._wake.set()

    def _take(self) -> Ticket | None:
        if not self.idle_slots or (self.limits.rate and not self.idle_tokens):
            return None
        slot = self.idle_slots.pop()
        token = self.idle_tokens.pop() if self.limits.rate else None
        self.busy.add(slot)
        if token is not None:
            self.in_flight_tokens.add(token)
        probe = slot == self.probe_slot
        if probe:
            self.probe_slot = None
        return Ticket(slot, token, probe)

    def _serve(self) -> None:
        while self.waiters:
            if self.waiters[0].done():
                self.waiters.popleft()
                continue
            ticket = self._take()
            if ticket is None:
                return
            self.waiters.popleft().set_result(ticket)

    def _fail_waiters(self, error: DeliveryError) -> None:
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_exception(error)

    # -- the backend side -----------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"slots-{self.transport}")

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SYNC_S)
            self._wake.clear()
            if self._closed:
                return
            try:
                delay = await self._sync()
            except Exception:  # never let the pool's task die: waiters would hang
                log.exception("%s slot pool: exchange failed", self.transport)
                delay = RETRY_S
            if delay:
                await asyncio.sleep(delay)
            if not self.held and not self.waiters and not self.spent and not self.give_slots and not self.idle_tokens:
                self._task = None
                return  # nothing held: the next acquire starts the task again

    async def _sync(self) -> float:
        """One exchange; returns how long to wait before the next one when the backend refused a lease."""
        now = time.monotonic()
        demand = sum(1 for w in self.waiters if not w.done())
        need_slots = unmet = max(0, demand - len(self.idle_slots))
        if self.limits.max_concurrent:  # holding the whole allowance (or this worker's share): asking is pointless
            need_slots = min(need_slots, max(0, (self.share or self.limits.max_concurrent) - self.held))
        need_tokens = max(0, demand - len(self.idle_tokens)) if self.limits.rate else 0
        if len(self.idle_tokens) > len(self.idle_slots) + len(self.busy) and self.limits.rate:
            # More tokens than slots to use them (slots given back): the rest go back for the others.
            spare = len(self.idle_tokens) - len(self.idle_slots) - len(self.busy)
            self.give_tokens += self.idle_tokens[:spare]
            self.idle_tokens = self.idle_tokens[spare:]
        if self.open_until > now:
            need_slots = need_tokens = 0
        request = Exchange(self.holder, self._seq, need_slots, need_tokens)
        request.idle_slots = max(0, len(self.idle_slots) - len(self.idle_tokens))
        request.unmet = unmet if self.open_until <= now else 0
        if not demand:  # nobody here waits: what is idle goes back for the other workers
            self.give_slots += self.idle_slots
            request.give_tokens, self.idle_tokens = self.idle_tokens, []
            self.idle_slots = []
        request.give_slots, self.give_slots = self.give_slots, []
        request.give_tokens += self.give_tokens
        self.give_tokens = []
        request.spent = [(token, max(0.0, now - at)) for token, at in self.spent]
        self.spent = []
        request.successes, request.answered = self.successes, self.answered
        self.successes = self.answered = 0
        if now - self._renewed >= RENEW_S:
            request.keep = [*self.idle_slots, *self.busy, *self.idle_tokens, *self.in_flight_tokens]
            self._renewed = now
        if not (
            request.want_slots
            or request.want_tokens
            or request.give_slots
            or request.give_tokens
            or request.spent
            or request.keep
            or request.successes
            or unmet
        ):
            return 0.0
        self._seq += max(request.want_slots, request.want_tokens)
        loop = asyncio.get_running_loop()
        try:
            block: Block = await loop.run_in_executor(
                self.executor, self.backend.exchange, self.transport, self.limits, request
            )
        except DeliveryError as exc:  # the limiter is unavailable: do not send
            self._fail_waiters(exc)
            return RETRY_S
        self._apply(block, time.monotonic())
        if block.reason == "open":
            return 0.0
        if block.reason and demand > len(block.slots):
            return min(block.wait, RETRY_S, BUSY_WAIT_S)
        return 0.0

    def _apply(self, block: Block, now: float) -> None:
        lost = set(block.lost)
        if lost:
            log.warning("%d %s slot lease(s) had expired; dropped", len(lost), self.transport)
            self.idle_slots = [s for s in self.idle_slots if s not in lost]
            self.idle_tokens = [t for t in self.idle_tokens if t not in lost]
            self.busy -= lost  # in flight on a lost lease: finished, then forgotten
            self.in_flight_tokens -= lost
        if block.reason == "open":
            self.open_until = now + block.wait
            self._fail_waiters(CircuitOpen(self.transport, block.wait))
            return
        self.idle_slots += block.slots
        self.idle_tokens += block.tokens
        if block.probe and block.slots:
            self.probe_slot = block.slots[0]
        if block.wanting and self.limits.max_concurrent:
            self.share = math.ceil(max(1.0, block.allowed) / (block.wanting + 1))
            self.excess = max(0, self.held - self.share)
        else:
            self.share = 0
        while self.excess > 0 and self.idle_slots:  # idle slots beyond this worker's share go back at once
            self.give_slots.append(self.idle_slots.pop())
            self.excess -= 1
        self._serve()
        if self.give_slots:
            self._wake.set()

    async def _report(self, slot: str, outcome: Outcome) -> None:
        loop = asyncio.get_running_loop()
        open_in, allowed = await loop.run_in_executor(
            self.executor, self.backend.release, self.transport, slot, self.limits, outcome
        )
        if open_in > 0:
            self.open_until = time.monotonic() + open_in
            self.give_slots += self.idle_slots
            self.idle_slots = []
            self._fail_waiters(CircuitOpen(self.transport, open_in))
        elif outcome == "throttled" and self.limits.max_concurrent:
            # Halve this worker's holding, as the allowance was halved.
            self.excess = max(self.excess, self.held - max(1, min(self.held // 2, int(allowed))))
            while self.excess > 0 and self.idle_slots:
                self.give_slots.append(self.idle_slots.pop())
                self.excess -= 1
        self._wake.set()

    async def close(self) -> None:
        """Give everything back (the worker is stopping)."""
        self._closed = True
        self._wake.set()
        request = Exchange(self.holder)
        request.give_slots = [*self.idle_slots, *self.busy, *self.give_slots]
        request.give_tokens = [*self.idle_tokens, *self.give_tokens]
        request.spent = [(token, 0.0) for token, _ in self.spent] + [(t, 0.0) for t in self.in_flight_tokens]
        if request.give_slots or request.give_tokens or request.spent:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self.executor, self.backend.exchange, self.transport, self.limits, request)


def _expire(future: asyncio.Future[Ticket], transport: str) -> None:
    """A waiter's time is up: the row goes back to the ledger instead of blocking a worker."""
    if not future.done():
        future.set_exception(
            RetryableDeliveryError(
                f"{transport} busy: no free slot within {MAX_WAIT_S:.0f}s", code="throttled", retry_after=1.0
            )
        )
