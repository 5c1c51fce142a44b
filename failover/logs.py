"""Logging set-up: one format, contact data masked in every record, routine beat chatter at DEBUG.

Beat runs the sweep and the follow-up every 2 seconds (and the watcher's
polls on their own intervals); Celery announces each at INFO three times
(sent, received, succeeded). Those lines are demoted to DEBUG here, so a
person running ``make run`` sees start-up, activations, sends and errors.
A routine task that *fails* is still logged at ERROR: only the
"Sending due task" / "received" / "succeeded" lines are demoted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from failover.domain.lastgood import Broken
from failover.privacy import ScrubbingFilter

CONFIG_LOGGER = "failover.config"

ROUTINE_TASKS = (
    "failover.tasks.sweep",
    "failover.tasks.follow_up",
    "failover.tasks.evaluate_detection",
    "failover.tasks.run_probe",
    "failover.tasks.poll_graph",
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
    handler.addFilter(ScrubbingFilter())
    handler.addFilter(RoutineFilter(logging.getLevelNamesMapping().get(level.upper(), logging.INFO)))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # twilio logs request URLs (with To=... query strings) at INFO; keep it quiet.
    logging.getLogger("twilio").setLevel(logging.WARNING)
