"""Heartbeats: workers and the beat say they are alive, in the database, for doctor and health checks.

A worker writes from a bootstep timer (Celery's documented way to run
something periodically inside a worker), whether or not it has work; the beat
writes whenever it publishes a task, at most every HEARTBEAT_EVERY seconds.
Both are cheap: one small UPDATE per process per half minute.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery import Celery, bootsteps
from celery.signals import before_task_publish
from sqlalchemy.exc import SQLAlchemyError

from failover.clock import utcnow
from failover.engine import readiness

log = logging.getLogger(__name__)


def record(runtime: Any, *, name: str, kind: str) -> None:
    """Write one heartbeat on a thread of its own: a busy database never delays the beat or the worker's timer."""
    threading.Thread(target=_write, args=(runtime, name, kind), name="heartbeat", daemon=True).start()


def _write(runtime: Any, name: str, kind: str) -> None:
    try:
        with runtime.database.transaction() as session:
            readiness.beat(session, name=name, kind=kind, now=utcnow(), pid=os.getpid())
    except SQLAlchemyError as exc:  # the database restarting: the next beat says it again
        log.warning("heartbeat of %s not written: %s", name, type(exc).__name__)


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        runtime = worker.app.runtime
        name = f"worker@{worker.hostname or socket.gethostname()}"
        record(runtime, name=name, kind="worker")
        self.tref = worker.timer.call_repeatedly(
            readiness.HEARTBEAT_EVERY, record, (runtime,), {"name": name, "kind": "worker"}, priority=10
        )

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


def install_worker(app: Celery) -> None:
    app.steps["worker"].add(WorkerHeartbeat)


def install_beat(runtime: Any) -> Any:
    """In the beat process only: each publish (at most every HEARTBEAT_EVERY s) writes the beat's heartbeat."""
    name = f"beat@{socket.gethostname()}"
    last = [0.0]

    def on_publish(**_kwargs: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= readiness.HEARTBEAT_EVERY:
            last[0] = now
            record(runtime, name=name, kind="beat")

    before_task_publish.connect(on_publish, weak=False)
    return on_publish
