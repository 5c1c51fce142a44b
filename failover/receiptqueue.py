"""The receipts queue: verified delivery receipts waiting durably in the shared Redis for a worker to apply.

A Redis Stream with one consumer group. The web ``push`` es each verified
callback (``XADD``) and answers at once; a worker ``take`` s a group of entries
(``XREADGROUP``), applies them in one database transaction and only then
``ack`` s them (``XACK`` + ``XDEL``). An entry a worker took but never
acknowledged - it died mid-group, or the database refused the transaction -
stays in the group's pending list, and after ``claim_after_s`` any worker takes
it over (``XAUTOCLAIM``) and applies it again; receipts are idempotent, so a
group applied twice changes nothing the second time.

Why a stream and not a list with ``LMOVE``: the pending list, per-entry
idle times and claiming are built in, so a dead worker's entries need no
processing list per consumer and no sweeper of our own.

``failover:receipts:draining`` says a drain is running or was asked for:
``push`` sets it (``SET NX``) and tells the caller to wake a worker only when
it was not set, so 15,000 callbacks wake one drain, not 15,000.

Payloads are opaque bytes here (the tracking service encodes them); they hold
ids and statuses, never contact data. Any Redis error surfaces as
``QueueUnavailable``: the web then applies the receipt itself, as without a queue.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

STREAM = "failover:receipts"
GROUP = "appliers"
DRAINING_TTL_MS = 30_000  # a drain asked for but never run (a lost task) is asked for again after this


class QueueUnavailable(Exception):
    """Redis did not take or give the entries; the caller falls back (apply now, or leave them for later)."""


@dataclass(frozen=True)
class Entry:
    id: str
    payload: bytes


class ReceiptQueue:
    def __init__(
        self, url: str, *, claim_after_s: float = 30.0, consumer: str | None = None, stream: str = STREAM
    ) -> None:
        self.url = url
        self.stream, self.draining = stream, f"{stream}:draining"
        self.claim_after_ms = int(claim_after_s * 1000)
        self._consumer = consumer
        self._client: Any = None
        self._group_ready = False

    @property
    def consumer(self) -> str:
        """This process's name in the group (looked up per call: workers fork after the runtime is built)."""
        return self._consumer or f"{socket.gethostname()}-{os.getpid()}"

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        """One Redis command; the group is created on first use (and again if Redis lost the stream)."""
        import redis

        try:
            if not self._group_ready:
                self._create_group()
            try:
                return getattr(self._redis(), what)(*args, **kwargs)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._create_group()
                return getattr(self._redis(), what)(*args, **kwargs)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _create_group(self) -> None:
        import redis

        try:
            self._redis().xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def push(self, payload: bytes) -> bool:
        """Queue one entry durably; True when no drain was running or asked for (the caller wakes one).

        One round trip: ``XADD`` and ``SET NX`` pipelined (without MULTI: the entry counts on its own).
        """
        import redis

        if not self._group_ready:
            self._call("ping")  # creates the group, so that the first drain reads this entry too
        pipe = self._redis().pipeline(transaction=False)
        pipe.xadd(self.stream, {"p": payload})
        pipe.set(self.draining, "1", nx=True, px=DRAINING_TTL_MS)
        try:
            added, woken = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(added, Exception):
            raise QueueUnavailable(f"{type(added).__name__}: {added}")
        return woken is True

    def take(self, count: int, *, claim: bool = True) -> list[Entry]:
        """Up to ``count`` entries: first (``claim``) any a dead or failed worker left unacknowledged, then new ones."""
        if claim:
            claimed = self._call(
                "xautoclaim", self.stream, GROUP, self.consumer, self.claim_after_ms, "0-0", count=count
            )
            entries = _entries(claimed[1])
            if entries:
                return entries
        read = self._call("xreadgroup", GROUP, self.consumer, {self.stream: ">"}, count=count)
        return _entries(read[0][1]) if read else []

    def ack(self, ids: list[str], *, hold: bool = False) -> None:
        """The entries are applied and committed: forget them (``hold``: and say a drain still runs)."""
        if ids:
            pipe = self._redis().pipeline(transaction=False)
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            if hold:
                pipe.set(self.draining, "1", px=DRAINING_TTL_MS)
            self._call_pipeline(pipe)

    def _call_pipeline(self, pipe: Any) -> None:
        import redis

        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def hold(self) -> None:
        """A drain runs: callbacks need not wake another for a while."""
        self._call("set", self.draining, "1", px=DRAINING_TTL_MS)

    def release(self) -> None:
        """The drain ends: the next callback wakes a new one."""
        self._call("delete", self.draining)

    def depth(self) -> int:
        """Entries in the stream: queued and not yet acknowledged."""
        return int(self._call("xlen", self.stream))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _entries(raw: Any) -> list[Entry]:
    # XAUTOCLAIM lists entries deleted meanwhile as (id, None): skip those.
    return [Entry(_text(entry_id), fields[b"p"]) for entry_id, fields in raw or [] if fields and b"p" in fields]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
