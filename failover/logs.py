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

import http.client
import logging
import sys
from collections.abc import Iterable
from typing import Any

from failover.domain.lastgood import Broken
from failover.privacy import ScrubbingFilter

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


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
    handler.addFilter(RoutineFilter(logging.getLevelNamesMapping().get(level.upper(), logging.INFO)))
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
