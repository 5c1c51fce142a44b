"""Celery tasks: thin wrappers that pass ids to the Runtime's use cases."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="failover.tasks.send_batch", bind=True)
def send_batch(self: Any, batch_id: int) -> dict[str, int]:
    result = self.app.runtime.send_batch(batch_id)
    return {"sent": result.sent, "failed": result.failed, "retrying": result.retrying}


@shared_task(name="failover.tasks.sweep", bind=True)
def sweep(self: Any) -> dict[str, Any]:
    report = self.app.runtime.sweep()
    return {"republished": report.republished, "broker_ok": report.broker_ok}


@shared_task(name="failover.tasks.poll_graph", bind=True)
def poll_graph(self: Any) -> dict[str, Any]:
    return self.app.runtime.poll_graph()  # type: ignore[no-any-return]


@shared_task(name="failover.tasks.run_probe", bind=True)
def run_probe(self: Any, name: str) -> dict[str, Any]:
    return self.app.runtime.run_probe(name)  # type: ignore[no-any-return]


@shared_task(name="failover.tasks.evaluate_detection", bind=True)
def evaluate_detection(self: Any) -> dict[str, Any]:
    return self.app.runtime.evaluate_detection()  # type: ignore[no-any-return]


@shared_task(name="failover.tasks.audit_checkpoint", bind=True)
def audit_checkpoint(self: Any) -> dict[str, Any]:
    return self.app.runtime.audit_checkpoint()  # type: ignore[no-any-return]


@shared_task(name="failover.tasks.follow_up", bind=True)
def follow_up(self: Any) -> dict[str, int]:
    report = self.app.runtime.follow_up()
    return {"batches": len(report.batch_ids)}


@shared_task(name="failover.tasks.status_tick", bind=True)
def status_tick(self: Any) -> dict[str, Any]:
    return self.app.runtime.status.tick()  # type: ignore[no-any-return]
