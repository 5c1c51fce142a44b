"""Liveness and readiness for load balancers and compose health checks."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from failover.web.views import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    checks = {"database": _database(), "broker": _broker()}
    ready = all(check["ok"] for check in checks.values())
    return jsonify(ready=ready, checks=checks), 200 if ready else 503


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
