"""Exactly one scheduler: a lease lock for `failover beat`.

Celery beat has no built-in guard against a second instance, and two beats
double every scheduled task. `failover beat` takes this lock first and exits
when it cannot: a Redis lease (renewed every third of its TTL, given up on
exit) in production, an exclusive file lock on the data directory in the
embedded mode. Every beat task is idempotent anyway; the lock stops the waste
and the confusing logs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""


class LockHeld(RuntimeError):
    """Another process holds the lock."""


class Lock(Protocol):
    def acquire(self) -> None: ...

    def release(self) -> None: ...


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockHeld(f"{self.path} is held by {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class RedisLock:
    """A lease that must be renewed; ``on_lost`` runs if renewal fails."""

    def __init__(self, url: str, key: str, *, ttl: float = 30.0, on_lost: object = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease; wait while Redis is unreachable (it may be restarting); LockHeld if taken."""
        import redis

        while True:
            try:
                if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
                    break
                holder = self.client.get(self.key)
            except redis.ConnectionError:
                log.warning("Redis unreachable; waiting to take %s", self.key)
                self._stop.wait(2.0)
                continue
            raise LockHeld(f"{self.key} is held by {holder.decode() if holder else 'another process'}")
        self._thread = threading.Thread(target=self._renew, name="lock-renewal", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                renewed = self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
            except Exception as exc:  # a Redis blip: keep trying until the lease runs out
                log.warning("could not renew %s: %s", self.key, type(exc).__name__)
                continue
            if renewed == 2:
                # Redis came back empty (a restart without persistence); the lease is ours again.
                log.warning("re-took %s after Redis lost it", self.key)
            elif not renewed:
                log.error("lost %s to another process", self.key)
                if callable(self.on_lost):
                    self.on_lost()
                return

    def release(self) -> None:
        self._stop.set()
        try:
            self.client.eval(_RELEASE, 1, self.key, self.token)
        except Exception:
            log.warning("could not release %s; it expires by itself", self.key)
        self.client.close()
