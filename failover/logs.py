"""Logging set-up: one format, contact data and credentials masked in every record, routine beat chatter at DEBUG.

The scrubbing filter sits on every handler of the root logger, so it sees the
records of every library that propagates there: urllib3 and requests at DEBUG,
the SendGrid SDK's ``HEADERS:`` line, twilio's request log. ``http.client``
prints its debug output (``send: b'...Authorization: ...'``) instead of
logging it; that output is routed into the ``http.client`` logger here, so it
is filtered too and never reaches a terminal raw.

Beat runs the sweep and the follow-up every 2 seconds (and the watcher's
polls on their own intervals); Celery announces each at INFO three times
(sent, received, succeeded). Those lines are demoted to DEBUG here, so a
person running ``make run`` sees start-up, activations, sends and errors.
A routine task that *fails* is still logged at ERROR: only the
"Sending due task" / "received" / "succeeded" lines are demoted.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from failover.domain.lastgood import Broken
from failover.privacy import ScrubbingFilter, redact_secrets, scrub

CONFIG_LOGGER = "failover.config"

ROUTINE_TASKS = (
    "failover.tasks.sweep",
    "failover.tasks.follow_up",
    "failover.tasks.evaluate_detection",
    "failover.tasks.run_probe",
    "failover.tasks.poll_graph",
    "failover.tasks.scheduled_drills",
)
_ROUTINE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
_ROUTINE_WORDS = ("Sending due task", "] received", "] succeeded in")


class RoutineFilter(logging.Filter):
    """Demotes the periodic tasks' bookkeeping lines to DEBUG (dropped unless the level is DEBUG)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(_ROUTINE_LOGGERS):
            return True
        message = record.getMessage()
        if not any(word in message for word in _ROUTINE_WORDS) or not any(t in message for t in ROUTINE_TASKS):
            return True
        if self.level > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def broken_config(broken: Iterable[Broken]) -> None:
    """Each broken configuration file and what is in force instead, at ERROR, once per reload."""
    log = logging.getLogger(CONFIG_LOGGER)
    for item in broken:
        for problem in item.problems:
            log.error("configuration problem: %s", problem)
        log.error("%s: %s", item.file, item.outcome())


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr as readable text, or (``fmt="json"``) one JSON object a line (FAILOVER_LOG_FORMAT)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
        logging.captureWarnings(True)  # warnings too become JSON lines (py.warnings)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
    handler.addFilter(RoutineFilter(logging.getLevelNamesMapping().get(level.upper(), logging.INFO)))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    scrub_handlers(root)
    # twilio logs request URLs (with To=... query strings) at INFO; keep it quiet.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    http.client.print = _http_client_debug  # type: ignore[attr-defined]


def scrub_handlers(logger: logging.Logger) -> None:
    """Put the scrubbing filter on each of ``logger``'s handlers (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())


def _http_client_debug(*args: Any, **_kwargs: Any) -> None:
    """``HTTPConnection.debuglevel > 0`` prints each request; log it (filtered) instead."""
    logging.getLogger("http.client").debug(" ".join(str(arg) for arg in args))


# -- ids on every line: which request, activation, batch a line belongs to -------------------------------

CONTEXT_FIELDS = ("request_id", "activation_id", "batch_id")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("failover_log_context", default=None)


@contextlib.contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Put these ids (request_id, activation_id, batch_id) on every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**ids: Any) -> None:
    """Add ids to the current context until it ends (a request, a task)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})


def clear() -> None:
    _context.set(None)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (None when unbound), for the JSON lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time, level, logger, process, message, the ids, the exception.

    The scrubbing filter has already masked the message and the traceback; any
    other string a library put on the record (``extra=``) is masked here, since
    those would otherwise reach the line unread.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(processName)s %(process)d %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "processName": "process_name"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            timestamp=False,
        )

    def formatException(self, ei: Any) -> str:  # type: ignore[override]
        return redact_secrets(scrub(super().formatException(ei)))  # type: ignore[arg-type]

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        for name in CONTEXT_FIELDS:
            log_data.setdefault(name, None)
        return {key: _clean(value) for key, value in log_data.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(scrub(value))
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
