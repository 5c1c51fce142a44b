"""Exactly one beat: the second scheduler is refused, a restarted Redis does not orphan the lease."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from failover.locks import FileLock, LockHeld, RedisLock
from tests.integration.workers import wait_until
from tests.services import RedisServer


def test_file_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    first = FileLock(tmp_path / "beat.lock")
    first.acquire()
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from failover.locks import FileLock; FileLock(__import__('pathlib').Path("
            f"{str(tmp_path / 'beat.lock')!r})).acquire()",
        ],
        capture_output=True,
        text=True,
    )
    assert other_process.returncode != 0 and "LockHeld" in other_process.stderr
    first.release()
    second = FileLock(tmp_path / "beat.lock")
    second.acquire()
    second.release()


def test_redis_lock_refuses_a_second_holder_and_survives_a_flush(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete("test:beat")
    first = RedisLock(redis_server.url, "test:beat", ttl=0.6)
    first.acquire()
    second = RedisLock(redis_server.url, "test:beat", ttl=0.6)
    with pytest.raises(LockHeld, match="test:beat is held by"):
        second.acquire()
    client.flushall()  # Redis restarted without persistence
    lost: list[bool] = []
    first.on_lost = lambda: lost.append(True)
    wait_until(lambda: client.get("test:beat") == first.token.encode(), timeout=5, what="the lease re-taken")
    assert not lost
    first.release()
    assert client.get("test:beat") is None
    second.client.close()
    client.close()
