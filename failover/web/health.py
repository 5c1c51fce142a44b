"""Liveness and readiness for load balancers and compose health checks."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from failover.domain.lastgood import CURRENT, NONE
from failover.web.views import runtime

bp = Blueprint("health", __name__)
MAX_PROBLEMS = 50


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Ready when the database and the broker answer. Provider circuits and configuration are reported, not
    required: with a provider down the service still works through the fallback channel, and a broken
    runbook must not take the console (and every healthy runbook) out of a load balancer. ``config``
    says, per runbook, whether it is ready as written or runs on its last good version."""
    checks = {"database": _database(), "broker": _broker()}
    ready = all(check["ok"] for check in checks.values())
    return jsonify(ready=ready, checks=checks, providers=providers(), config=config()), 200 if ready else 503


def config() -> dict[str, object]:
    report = runtime().config.report()
    return {
        "ok": report.ok,
        "catalog": report.catalog,
        "problems": [str(p) for p in report.problems[:MAX_PROBLEMS]],  # a 50,000-line file can have thousands
        "problems_total": len(report.problems),
        "files": [
            {
                "file": item.file,
                "in_force": item.in_force,
                "runbook": item.runbook_id,
                "outcome": item.outcome(),
                "problems": [str(p) for p in item.problems[:MAX_PROBLEMS]],
            }
            for item in report.broken
        ],
        "runbooks": {
            runbook_id: {"ready": report.catalog and version == CURRENT, "version": version if report.catalog else NONE}
            for runbook_id, version in sorted(report.versions.items())
        },
    }


@bp.app_context_processor
def _config_banner() -> dict[str, object]:
    """``config_report()`` for the red banner every console page shows while a file is broken."""
    return {"config_report": lambda: runtime().config.report()}


def providers() -> dict[str, object]:
    rt = runtime()
    modes = {name: channel.transport for name, channel in rt.delivery.channels.items()}
    circuits = {name: state.as_json() for name, state in rt.delivery.guard.circuits().items()}
    return {"channels": modes, "circuits": circuits}


def problems() -> list[str]:
    """Plain-language banners for the console: what is down right now."""
    found = []
    if not _broker()["ok"]:
        found.append(
            "The task broker is unreachable: activations are accepted and queued, and go out as soon as it is back."
        )
    for name, state in runtime().delivery.guard.circuits().items():
        if state.open:
            found.append(
                f"{name} looks down (circuit open after {state.failures} failures): "
                "sending to it is paused and fallback channels take over."
            )
    return found


def _database() -> dict[str, object]:
    try:
        with runtime().database.reading() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the message says which
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _broker() -> dict[str, object]:
    celery = current_app.extensions["celery"]
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises transport-specific errors
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}
