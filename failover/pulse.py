"""Whether there is work about: lets an idle installation sleep, and wakes it when work arrives.

While nothing is open (no message to send or in flight, no receipt to apply,
no fallback or escalation due, no activation awaiting approval) beat runs the
sweep and the follow-up every FAILOVER_IDLE_INTERVAL seconds instead of every
2, and the embedded broker is polled once a second instead of ten times. Work
marks the pulse busy (``mark``): publishing a batch does (so an activation
wakes everything at once), and so does a follow-up that finds open work in
the database. Busy lasts ``BUSY_FOR_S`` after the last mark.

The mark lives where every process of an installation can see it: a file in
the data directory on one host (embedded), a Redis key with the shared Redis
(production). Reading it is a ``stat`` or one ``GET``: cheap enough for beat
to look every 2 seconds.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)
BUSY_FOR_S = 120.0
KEY = "failover:busy"


class Pulse(Protocol):
    spec: str

    def mark(self, seconds: float = BUSY_FOR_S) -> None: ...

    def busy(self) -> bool: ...


class FilePulse:
    """The mark is a file's mtime, set into the future: busy while it is ahead of the clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = f"file:{path}"

    def mark(self, seconds: float = BUSY_FOR_S) -> None:
        until = time.time() + seconds
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            os.utime(self.path, (until, until))
        except OSError as exc:
            log.warning("cannot mark work in %s (beat stays at its idle pace): %s", self.path, exc)

    def busy(self) -> bool:
        try:
            return self.path.stat().st_mtime > time.time()
        except OSError:
            return False


class RedisPulse:
    def __init__(self, url: str) -> None:
        self.url = url
        self.spec = f"redis:{url}"
        self._client = None

    def _redis(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def mark(self, seconds: float = BUSY_FOR_S) -> None:
        try:
            self._redis().set(KEY, "1", px=int(seconds * 1000))
        except Exception as exc:  # Redis down: sending goes on, beat simply stays at its idle pace
            log.warning("cannot mark work in Redis: %s", type(exc).__name__)

    def busy(self) -> bool:
        try:
            return bool(self._redis().exists(KEY))
        except Exception:
            return True  # cannot tell: behave as busy, the safe side

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def from_spec(spec: str) -> Pulse:
    kind, _, where = spec.partition(":")
    return RedisPulse(where) if kind == "redis" else FilePulse(Path(where))


def for_installation(data_dir: Path, redis_url: str | None) -> Pulse:
    return RedisPulse(redis_url) if redis_url else FilePulse(data_dir / "busy")
