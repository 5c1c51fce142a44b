"""One asyncio event loop per worker process, in its own thread, carrying every provider request.

The dispatcher (failover/engine/dispatch.py) hands it provider-sized pieces from
any Celery task thread (``submit``) and collects the outcomes as they complete.
Channels with an asynchronous path (``send_async``: Twilio SMS, SendGrid, Vonage)
keep one keep-alive connection pool each on this loop; the others (voice, chat,
outbox, status page) run their ``send`` on the loop's thread pool. The guard's
slots are leased in blocks by one :class:`~failover.slotpool.SlotPool` per
transport (``guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from failover import metrics
from failover.errors import DeliveryError
from failover.slotpool import SlotPool, Ticket
from failover.throttle import Guard, Outcome, outcome_of

log = logging.getLogger(__name__)

SYNC_SEND_THREADS = 32  # for channels without an asynchronous path (voice, chat, outbox, status page)
T = TypeVar("T")


class LoopGuard:
    """The guard's rules on the send loop: ``async with loop_guard.request("twilio"): ...``."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.pools: dict[str, SlotPool] = {}
        # Backend calls block (Redis); one helper thread keeps them off the loop.
        self._backend_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard")

    @contextlib.asynccontextmanager
    async def request(self, transport: str) -> AsyncIterator[None]:
        limits = self.guard.limits.get(transport)
        if limits is None:  # outbox, status page: nothing to protect
            yield
            return
        pool = self.pools.get(transport)
        if pool is None:
            pool = self.pools[transport] = SlotPool(self.guard.backend, transport, limits, self._backend_thread)
        ticket: Ticket = await pool.acquire()
        outcome: Outcome = "unused"
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            yield
            outcome = "ok"
        except DeliveryError as exc:
            outcome = outcome_of(exc, transport)
            raise
        finally:
            pool.release(ticket, outcome)
            metrics.provider_request(transport, outcome, loop.time() - started)

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        self._backend_thread.shutdown(wait=True)


class SendLoop:
    """``max_in_flight`` (FAILOVER_SEND_CONCURRENCY): at most this many pieces at once in this worker;
    0 = as many as the guard allows."""

    def __init__(self, guard: Guard | None, *, max_in_flight: int = 0, sync_threads: int = SYNC_SEND_THREADS) -> None:
        self.max_in_flight = max_in_flight
        self._admission: asyncio.Semaphore | None = None
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=sync_threads, thread_name_prefix="send"))
        self.guard = LoopGuard(guard) if guard is not None else None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._thread = threading.Thread(target=self._run, name="send-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def start_all(self, jobs: list[tuple[Coroutine[Any, Any, T], Callable[[asyncio.Task[T]], None]]]) -> None:
        """Start many coroutines in one hop to the loop; each one's callback gets its task, on the loop, when it
        ends. (Cheaper than ``submit`` per coroutine: no thread-safe future and its lock per piece.)"""
        self.loop.call_soon_threadsafe(self._start_all, jobs)

    def _start_all(self, jobs: list[tuple[Coroutine[Any, Any, T], Callable[[asyncio.Task[T]], None]]]) -> None:
        for coroutine, done in jobs:
            self.loop.create_task(coroutine).add_done_callback(done)

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one of this worker's ``max_in_flight`` places (on the loop)."""
        if not self.max_in_flight:
            yield
            return
        if self._admission is None:
            self._admission = asyncio.Semaphore(self.max_in_flight)
        async with self._admission:
            yield

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` on the loop when it stops (a channel's connection pool)."""
        self._closers.append(closer)

    async def _shutdown(self) -> None:
        if self.guard is not None:
            await self.guard.close()
        for closer in self._closers:
            try:
                await closer()
            except Exception:
                log.exception("closing a send-loop resource failed")

    def close(self) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            self.submit(self._shutdown()).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()
