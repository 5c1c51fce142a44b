"""Logging set-up: one format, and contact data and credentials masked in every record.

The filter sits on every handler of the root logger, so it sees the records of
every library that propagates there: urllib3 and requests at DEBUG, the
SendGrid SDK's ``HEADERS:`` line, twilio's request log. ``http.client`` prints
its debug output (``send: b'...Authorization: ...'``) instead of logging it;
that output is routed into the ``http.client`` logger here, so it is filtered
too and never reaches a terminal raw.
"""

from __future__ import annotations

import http.client
import logging
import sys
from typing import Any

from failover.privacy import ScrubbingFilter


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
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
