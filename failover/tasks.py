"""Celery tasks: thin wrappers that pass ids to the Runtime's services (names: celery_app.TaskName)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from failover.celery_app import TaskName, runtime_of


@shared_task(name=TaskName.SEND_BATCH.value, bind=True)
def send_batch(self: Task[Any, Any], batch_id: int) -> dict[str, int]:
    result = runtime_of(self).delivery.send_batch(batch_id)
    return {"sent": result.sent, "failed": result.failed, "retrying": result.retrying}


@shared_task(name=TaskName.SWEEP.value, bind=True)
def sweep(self: Task[Any, Any]) -> dict[str, Any]:
    report = runtime_of(self).delivery.sweep()
    return {"republished": report.republished, "broker_ok": report.broker_ok}


@shared_task(name=TaskName.POLL_GRAPH.value, bind=True)
def poll_graph(self: Task[Any, Any]) -> dict[str, Any]:
    return runtime_of(self).detection.poll_graph()


@shared_task(name=TaskName.RUN_PROBE.value, bind=True)
def run_probe(self: Task[Any, Any], name: str) -> dict[str, Any]:
    return runtime_of(self).detection.run_probe(name)


@shared_task(name=TaskName.EVALUATE_DETECTION.value, bind=True)
def evaluate_detection(self: Task[Any, Any]) -> dict[str, Any]:
    return runtime_of(self).detection.evaluate()


@shared_task(name=TaskName.AUDIT_CHECKPOINT.value, bind=True)
def audit_checkpoint(self: Task[Any, Any]) -> dict[str, Any]:
    return runtime_of(self).audit.checkpoint()


@shared_task(name=TaskName.FOLLOW_UP.value, bind=True)
def follow_up(self: Task[Any, Any]) -> dict[str, int]:
    report = runtime_of(self).delivery.follow_up()
    return {"batches": len(report.batch_ids)}


@shared_task(name=TaskName.APPLY_RECEIPTS.value, bind=True)
def apply_receipts(self: Task[Any, Any]) -> dict[str, int]:
    """Queued delivery receipts, a group per transaction (woken by the first callback of a burst)."""
    drained = runtime_of(self).tracking.drain()
    return {"applied": drained.applied, "entries": drained.entries, "groups": drained.groups}


@shared_task(name=TaskName.CANARY_START.value, bind=True)
def canary_start(self: Task[Any, Any]) -> dict[str, int]:
    result = runtime_of(self).readiness.canary_start()
    return {"started": len(result.started), "failed": len(result.failed), "alerts": result.alerts}


@shared_task(name=TaskName.CANARY_CHECK.value, bind=True)
def canary_check(self: Task[Any, Any]) -> dict[str, int]:
    result = runtime_of(self).readiness.canary_check()
    return {"failed": len(result.failed), "alerts": result.alerts}


@shared_task(name=TaskName.SCHEDULED_DRILLS.value, bind=True)
def scheduled_drills(self: Task[Any, Any]) -> dict[str, Any]:
    return runtime_of(self).drills.run_due()


@shared_task(name=TaskName.SYNC_PEOPLE.value, bind=True)
def sync_people(self: Task[Any, Any]) -> dict[str, Any]:
    """Beat's Graph users sync (config/people.yaml, default every 6 hours); a failure keeps the roster."""
    return runtime_of(self).people.sync_task()


@shared_task(name=TaskName.STATUS_TICK.value, bind=True)
def status_tick(self: Task[Any, Any]) -> dict[str, Any]:
    return runtime_of(self).status.tick()
