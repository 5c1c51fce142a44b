"""What every long-running process sets up first: logging, process metrics, Sentry; and the ids on log lines.

``start`` is called by ``failover web``, ``worker`` and ``beat`` (and ``up``
prepares the shared metrics directory for its three children). Sentry is
optional (``SENTRY_DSN``); every event is scrubbed of contact data and
credentials before it leaves the process (``scrub_event``), and no request
bodies, cookies or headers are sent at all.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from failover import logs, metrics
from failover.privacy import redact_secrets, scrub
from failover.settings import Settings

log = logging.getLogger(__name__)
DROPPED = "[removed]"
# Parts of an event that hold what people typed or providers posted: never sent, whatever they contain.
_DROP_REQUEST = ("data", "cookies", "headers", "query_string", "env")


def start(settings: Settings, *, celery: bool = False, beat: bool = False) -> None:
    logs.configure(settings.log_level, settings.log_format)
    metrics.setup(settings.data_dir, settings.metrics_dir)
    if celery:
        _celery_hooks()
        _heartbeats(settings.data_dir, "worker", ("worker_ready", "task_postrun"))
    if beat:
        _heartbeats(settings.data_dir, "beat", ("beat_init", "before_task_publish"))
    if settings.sentry_dsn is not None:
        _sentry(settings)


def _sentry(settings: Settings) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    assert settings.sentry_dsn is not None
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        integrations=[
            FlaskIntegration(),
            CeleryIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # frames' locals hold rows with numbers and addresses
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
    )
    log.info("errors are reported to Sentry")


def scrub_event(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """A Sentry event with contact data and credentials masked everywhere, and request contents dropped."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in _DROP_REQUEST:
            if key in request:
                request[key] = DROPPED
    event.pop("user", None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return _clean(event)  # type: ignore[no-any-return]


def scrub_breadcrumb(crumb: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    return _clean(crumb)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(scrub(value))
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _celery_hooks() -> None:
    """Each task's lines carry its id (as request_id) and, for a send, the batch id."""
    from celery import signals

    def before(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
        logs.clear()
        batch = args[0] if args and getattr(task, "name", "") == "failover.tasks.send_batch" else None
        logs.bind(request_id=task_id, batch_id=batch)

    def after(**_: Any) -> None:
        logs.clear()

    signals.task_prerun.connect(before, weak=False)
    signals.task_postrun.connect(after, weak=False)


# -- heartbeat files for container health checks ----------------------------------------------------------
# The simplest heartbeat there is: a file whose mtime says the process did its work lately. The worker
# touches it after each task (beat sends it the sweep at least every FAILOVER_IDLE_INTERVAL seconds), beat
# each time it sends a task. docker compose's health checks read it (`failover heartbeat-check`).

HEARTBEAT_EVERY_S = 5.0


def heartbeat_file(data_dir: Path, name: str) -> Path:
    return data_dir / "heartbeat" / name


def _heartbeats(data_dir: Path, name: str, signal_names: tuple[str, ...]) -> None:
    from celery import signals

    path = heartbeat_file(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    last = [0.0]

    def touch(**_: Any) -> None:
        now = time.monotonic()
        if now - last[0] < HEARTBEAT_EVERY_S:
            return
        last[0] = now
        try:
            path.touch()
            os.utime(path)
        except OSError as exc:  # a full or read-only disk must not stop a send
            log.warning("heartbeat %s not written: %s", path, exc)

    for signal_name in signal_names:
        getattr(signals, signal_name).connect(touch, weak=False)


def heartbeat_age(data_dir: Path, name: str) -> float | None:
    """Seconds since ``name`` last beat, or None if it never did."""
    try:
        return max(0.0, time.time() - heartbeat_file(data_dir, name).stat().st_mtime)
    except FileNotFoundError:
        return None
