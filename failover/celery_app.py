"""Celery, configured for at-least-once delivery onto an idempotent ledger.

``acks_late`` + ``reject_on_worker_lost`` put a killed worker's task back on
the queue; prefetch 1 stops one worker hoarding batches. The broker is only a
wake-up call: the database says what is still to be sent, and the beat sweep
republishes anything a broker lost. Exactly one beat may run (see README).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

from failover.errors import BrokerUnavailable
from failover.runtime import Runtime

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


def create_celery(runtime: Runtime) -> Celery:
    settings = runtime.settings
    app = Celery("failover", set_as_current=True, include=["failover.tasks"])
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
            "failover.tasks.send_batch": {"queue": SEND_QUEUE},
            "failover.tasks.*": {"queue": CONTROL_QUEUE},
        },
        "beat_schedule": {
            "sweep": {
                "task": "failover.tasks.sweep",
                "schedule": SWEEP_EVERY_S,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            **runtime.watcher.schedule(),  # Graph, probes and re-evaluation, from detection.yaml
            # Receipts, fallbacks and escalation timers live in the database; a run lost or expired
            # while no worker listens is simply done by the next one.
            # The status page: subscribers told of new updates, the snapshot published when it changed or its
            # heartbeat is due (each target keeps its own revision and backoff; see engine/publishing.py).
            "status-page": {
                "task": "failover.tasks.status_tick",
                "schedule": SWEEP_EVERY_S,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            "follow-up": {
                "task": "failover.tasks.follow_up",
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
            "task": "failover.tasks.audit_checkpoint",
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
    app.runtime = runtime  # type: ignore[attr-defined]  # tasks reach it as self.app.runtime
    runtime.publisher = _publisher(app)
    return app


def _publisher(app: Celery) -> Any:
    def publish(batch_id: int, countdown: float) -> None:
        try:
            app.send_task("failover.tasks.send_batch", args=(batch_id,), countdown=countdown or None, retry=False)
        except Exception as exc:  # kombu raises transport-specific errors; all mean "not taken"
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    return publish
