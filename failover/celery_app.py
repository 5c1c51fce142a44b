"""Celery, configured for at-least-once delivery onto an idempotent ledger.

``acks_late`` + ``reject_on_worker_lost`` put a killed worker's task back on
the queue; prefetch 1 stops one worker hoarding batches. The broker is only a
wake-up call: the database says what is still to be sent, and the beat sweep
republishes anything a broker lost. Exactly one beat may run (see README).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from celery import Celery, Task
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

from failover.errors import BrokerUnavailable
from failover.runtime import Runtime


class TaskName(StrEnum):
    """Every task's registered name, defined once: tasks.py registers them, beat and the relay send them."""

    SEND_BATCH = "failover.tasks.send_batch"
    SWEEP = "failover.tasks.sweep"
    FOLLOW_UP = "failover.tasks.follow_up"
    POLL_GRAPH = "failover.tasks.poll_graph"
    RUN_PROBE = "failover.tasks.run_probe"
    EVALUATE_DETECTION = "failover.tasks.evaluate_detection"
    AUDIT_CHECKPOINT = "failover.tasks.audit_checkpoint"


# What each detection job (services.detection.Beat) runs.
DETECTION_TASKS = {"evaluate": TaskName.EVALUATE_DETECTION, "graph": TaskName.POLL_GRAPH, "probe": TaskName.RUN_PROBE}

SWEEP_EVERY_S = 2.0
SEND_QUEUE = "celery"
CONTROL_QUEUE = "control"
# Above any countdown we use (none today; retries are timed by the sweep).
VISIBILITY_TIMEOUT_S = 3600


class EmbeddedTransport(SQLAlchemyTransport):
    """kombu's SQLAlchemy transport polling 10x a second instead of once.

    Its transport options all go to ``create_engine``, so the polling interval
    cannot be passed that way; a subclass is the supported alternative.
    """

    polling_interval = 0.1


class FailoverCelery(Celery):
    """Celery with the process's Runtime attached: tasks reach it through ``runtime_of(task)``."""

    runtime: Runtime


def runtime_of(task: Task[Any, Any]) -> Runtime:
    app = task.app
    if not isinstance(app, FailoverCelery):
        raise RuntimeError("failover tasks run only in an app made by failover.celery_app.create_celery")
    return app.runtime


def create_celery(runtime: Runtime) -> FailoverCelery:
    settings = runtime.settings
    app = FailoverCelery("failover", set_as_current=True, include=["failover.tasks"])
    conf: dict[str, Any] = {
        "broker_url": settings.celery_broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry": False,
        # Sends go to the default queue; the beat's housekeeping to its own, so a sweep never waits
        # behind the backlog of a big broadcast it may have to rescue. Workers consume both.
        "task_routes": {
            TaskName.SEND_BATCH.value: {"queue": SEND_QUEUE},
            "failover.tasks.*": {"queue": CONTROL_QUEUE},
        },
        "beat_schedule": {
            "sweep": {
                "task": TaskName.SWEEP.value,
                "schedule": SWEEP_EVERY_S,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            **_detection_entries(runtime),  # Graph, probes and re-evaluation, from detection.yaml
            # Receipts, fallbacks and escalation timers live in the database; a run lost or expired
            # while no worker listens is simply done by the next one.
            "follow-up": {
                "task": TaskName.FOLLOW_UP.value,
                "schedule": SWEEP_EVERY_S,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
        },
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
    }
    if settings.audit_checkpoint_interval:
        # Signed checkpoints of the audit chain, anchored outside the database (failover/anchors.py).
        interval = settings.audit_checkpoint_interval
        conf["beat_schedule"]["audit-checkpoint"] = {
            "task": TaskName.AUDIT_CHECKPOINT.value,
            "schedule": interval,
            "options": {"expires": max(interval, SWEEP_EVERY_S * 5)},
        }
    if settings.embedded_broker:
        conf["broker_transport"] = "failover.celery_app:EmbeddedTransport"
        conf["broker_url"] = settings.celery_broker_url.removeprefix("sqla+")
        conf["broker_transport_options"] = {"connect_args": {"timeout": 30}}
    else:
        conf["broker_transport_options"] = {
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_connect_timeout": 3,
            "socket_timeout": 5,
            "max_retries": 0,
        }
        conf["broker_connection_timeout"] = 3
    app.conf.update(conf)
    app.runtime = runtime  # tasks reach it through runtime_of(self)
    runtime.relay.publisher = _publisher(app)
    return app


def _detection_entries(runtime: Runtime) -> dict[str, dict[str, Any]]:
    return {
        beat.name: _entry(DETECTION_TASKS[beat.job], beat.every, beat.args) for beat in runtime.detection.schedule()
    }


def _entry(task: TaskName, every: dt.timedelta, args: tuple[str, ...] = ()) -> dict[str, Any]:
    seconds = every.total_seconds()
    # A poll that waited in the queue longer than its own interval is stale: the next one is already due.
    return {"task": task.value, "schedule": seconds, "args": args, "options": {"expires": max(seconds, 1.0)}}


def _publisher(app: Celery) -> Any:
    def publish(batch_id: int, countdown: float) -> None:
        try:
            app.send_task(TaskName.SEND_BATCH.value, args=(batch_id,), countdown=countdown or None, retry=False)
        except Exception as exc:  # kombu raises transport-specific errors; all mean "not taken"
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    return publish
