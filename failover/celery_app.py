"""Celery, configured for at-least-once delivery onto an idempotent ledger.

``acks_late`` + ``reject_on_worker_lost`` put a killed worker's task back on
the queue; prefetch 1 stops one worker hoarding batches. The broker is only a
wake-up call: the database says what is still to be sent, and the beat sweep
republishes anything a broker lost. Exactly one beat may run (see README).
"""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum
from queue import Empty
from typing import Any

from celery import Celery, Task
from celery.schedules import schedule
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

from failover import heartbeats, pulse
from failover.errors import BrokerUnavailable
from failover.pulse import Pulse
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
    CANARY_START = "failover.tasks.canary_start"
    CANARY_CHECK = "failover.tasks.canary_check"
    SCHEDULED_DRILLS = "failover.tasks.scheduled_drills"
    SYNC_PEOPLE = "failover.tasks.sync_people"
    STATUS_TICK = "failover.tasks.status_tick"
    APPLY_RECEIPTS = "failover.tasks.apply_receipts"


# What each detection job (services.detection.Beat) runs.
DETECTION_TASKS = {"evaluate": TaskName.EVALUATE_DETECTION, "graph": TaskName.POLL_GRAPH, "probe": TaskName.RUN_PROBE}

SWEEP_EVERY_S = 2.0
DRILLS_EVERY_S = 60.0
SEND_QUEUE = "celery"
CONTROL_QUEUE = "control"
CANARY_CHECK_EVERY_S = 60.0  # waiting canaries: receipt arrived, or deadline passed (one query when none wait)
# Above any countdown we use (none today; retries are timed by the sweep).
VISIBILITY_TIMEOUT_S = 3600


class EmbeddedTransport(SQLAlchemyTransport):
    """kombu's SQLAlchemy transport polling 10x a second while there is work, every 2 seconds while idle.

    Its transport options all go to ``create_engine``, so the polling interval
    cannot be passed that way; a subclass is the supported alternative. The
    pace is chosen at each wait (Celery waits 2 s at most at a time): fast
    while the installation's pulse says there is work (publishing a batch
    marks it first), else one look at the queues every 2 s, and in between a
    look at the pulse (a ``stat``) every 0.1 s, so the first message of an
    activation waits no longer than it did. Beat's routine tasks alone do not
    speed it up: they can wait a second or two.
    """

    polling_interval = 0.1
    FAST_S, IDLE_S, WAKE_S = 0.1, 2.0, 0.1
    pulse: Pulse | None = None  # set by create_celery

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:  # type: ignore[override]
        if self.pulse is None or self.pulse.busy():
            self.polling_interval = self.FAST_S
            result = super().drain_events(connection, timeout)  # type: ignore[no-untyped-call]
        else:  # idle: one look at the queues, then wait out Celery's timeout (2 s) unless work is marked
            cycle: Any = self.cycle
            try:
                result = cycle.get(self._deliver, timeout=timeout)
            except Empty:
                self._wait_for_work(timeout if timeout is not None else self.IDLE_S)
                raise TimeoutError() from None
        return result

    def _wait_for_work(self, seconds: float) -> None:
        """Sleep, looking at the pulse (a file's mtime: a stat) every ``WAKE_S``; back early once work is marked."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(self.WAKE_S, left))
            if self.pulse is not None and self.pulse.busy():
                return


class IdleAware(schedule):
    """Every ``busy_s`` while the pulse says there is work, else every ``idle_s`` (failover/pulse.py).

    Beat stores its schedule with pickle, so the pulse travels as its spec and is rebuilt on first use.
    """

    def __init__(self, busy_s: float, idle_s: float, pulse_spec: str, app: Any = None) -> None:
        super().__init__(run_every=dt.timedelta(seconds=busy_s), app=app)
        self.busy_s, self.idle_s, self.pulse_spec = busy_s, idle_s, pulse_spec
        self._pulse: Pulse | None = None

    def is_due(self, last_run_at: dt.datetime) -> Any:
        if self._pulse is None:
            self._pulse = pulse.from_spec(self.pulse_spec)
        seconds = self.busy_s if self._pulse.busy() else self.idle_s
        self.run_every = dt.timedelta(seconds=seconds)
        return super().is_due(last_run_at)

    def __reduce__(self) -> Any:
        return self.__class__, (self.busy_s, self.idle_s, self.pulse_spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdleAware):
            return (self.busy_s, self.idle_s, self.pulse_spec) == (other.busy_s, other.idle_s, other.pulse_spec)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<every {self.busy_s}s with work, {self.idle_s}s idle>"


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
    # The sweep and follow-up: every 2 s with work, every FAILOVER_IDLE_INTERVAL s without (failover/pulse.py).
    housekeeping = IdleAware(SWEEP_EVERY_S, settings.idle_interval, runtime.pulse.spec)
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
                "schedule": housekeeping,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            **_detection_entries(runtime),  # Graph, probes and re-evaluation, from detection.yaml
            **_people_entries(runtime),  # Entra ID users into the people directory, from people.yaml
            # The status page: subscribers told of new updates, the snapshot published when it changed or its
            # heartbeat is due (each target keeps its own revision and backoff; see engine/publishing.py).
            "status-page": {
                "task": TaskName.STATUS_TICK.value,
                "schedule": SWEEP_EVERY_S,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            # Receipts, fallbacks and escalation timers live in the database; a run lost or expired
            # while no worker listens is simply done by the next one.
            "follow-up": {
                "task": TaskName.FOLLOW_UP.value,
                "schedule": housekeeping,
                "options": {"expires": SWEEP_EVERY_S * 5},
            },
            # Scheduled drills (config/drills.yaml): each due slot starts once (failover/services/drills.py).
            "scheduled-drills": {
                "task": TaskName.SCHEDULED_DRILLS.value,
                "schedule": DRILLS_EVERY_S,
                "options": {"expires": DRILLS_EVERY_S},
            },
        },
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
        # Beat looks at the pulse at least this often, so work wakes the idle sweep within 2 s.
        "beat_max_loop_interval": SWEEP_EVERY_S,
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
        EmbeddedTransport.pulse = runtime.pulse
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
    if settings.canary_interval and any(settings.canary_targets.values()):
        # End-to-end canaries (failover/engine/canary.py): a round every interval, receipts looked for every minute.
        conf["beat_schedule"]["canary-start"] = _entry(
            TaskName.CANARY_START, dt.timedelta(seconds=settings.canary_interval)
        )
        conf["beat_schedule"]["canary-check"] = _entry(
            TaskName.CANARY_CHECK, dt.timedelta(seconds=CANARY_CHECK_EVERY_S)
        )
    app.conf.update(conf)
    heartbeats.install_worker(app)  # workers say they are alive, for doctor and health checks
    app.runtime = runtime  # tasks reach it through runtime_of(self)
    runtime.relay.publisher = _publisher(app)
    runtime.tracking.waker = lambda: app.send_task(TaskName.APPLY_RECEIPTS.value, retry=False)  # control queue
    return app


def _detection_entries(runtime: Runtime) -> dict[str, dict[str, Any]]:
    return {
        beat.name: _entry(DETECTION_TASKS[beat.job], beat.every, beat.args) for beat in runtime.detection.schedule()
    }


def _people_entries(runtime: Runtime) -> dict[str, dict[str, Any]]:
    every = runtime.people.sync_every()
    return {"people-sync": _entry(TaskName.SYNC_PEOPLE, every)} if every is not None else {}


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
