"""Logging set-up: one format, and contact data masked in every record."""

from __future__ import annotations

import logging
import sys

from failover.privacy import ScrubbingFilter


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # twilio logs request URLs (with To=... query strings) at INFO; keep it quiet.
    logging.getLogger("twilio").setLevel(logging.WARNING)
