"""Fixtures shared by the guard's tests (test_throttle, test_slotpool)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover.throttle import LocalBackend, RedisBackend
from tests.services import RedisServer


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[LocalBackend | RedisBackend]:
    """Each guard backend in turn: in-process, and on a real redis-server (emptied first)."""
    if request.param == "local":
        yield LocalBackend()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_backend = RedisBackend(server.url, prefix=f"test:{request.node.name}")
    redis_backend.client.flushdb()
    yield redis_backend
    redis_backend.close()
