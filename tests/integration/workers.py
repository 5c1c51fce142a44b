"""Helpers to run real ``failover`` processes against test servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from failover.models import Delivery
from failover.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]


def start(command: str, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "failover", command, *extra],
            env=full_env,
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll a condition on real processes; fail with the process log if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- log ---\n{tail}")


def open_rows(runtime: Runtime) -> int:
    with runtime.database.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status.in_(("pending", "sending", "in_doubt")))
            )
            or 0
        )


def stack_runtime(mode: str, values: dict[str, str], request: Any, tmp_path: Path, monkeypatch: Any) -> Runtime:
    """A Runtime (with its Celery publisher) on the embedded stack or on Redis + PostgreSQL.

    ``values`` is the environment the test's processes will get; the database
    and broker settings are added to it here, and it is applied to this process.
    """
    from failover.celery_app import create_celery
    from failover.db import migrate
    from failover.settings import load_settings

    if mode == "embedded":
        values["FAILOVER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'failover.db'}"
    else:
        redis = request.getfixturevalue("redis_server")
        cluster = request.getfixturevalue("pg_cluster")
        template = request.getfixturevalue("pg_template")
        name = f"s_{tmp_path.name[-20:].replace('-', '_').lower()}"
        values["FAILOVER_DATABASE_URL"] = cluster.create_database(name, template=template)
        values["FAILOVER_BROKER_URL"] = redis.url
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    create_celery(runtime)
    return runtime
