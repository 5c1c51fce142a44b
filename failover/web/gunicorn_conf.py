"""gunicorn settings for failover's web process (``failover web`` loads them; plain gunicorn can too).

Read by ``failover web`` first, then ``FAILOVER_GUNICORN_CONFIG`` (a file of
your own, if set) and last ``GUNICORN_CMD_ARGS`` (e.g. ``--workers 4
--timeout 30``), so anything here can be changed without editing it. The
repository's ``gunicorn.conf.py`` imports this module, for
``gunicorn -c gunicorn.conf.py 'failover.web:create_app()'``.

The access log goes to stderr: the client is the real one behind a trusted
proxy (FAILOVER_TRUSTED_PROXIES, werkzeug's ProxyFix sets REMOTE_ADDR), the
request id is the one on the application's own log lines, and query strings
are left out (a webhook's query may carry a number).
"""

from __future__ import annotations

import os
from typing import Any

bind = f"{os.environ.get('FAILOVER_HOST', '127.0.0.1')}:{os.environ.get('FAILOVER_PORT', '8000')}"
workers = int(os.environ.get("FAILOVER_WEB_WORKERS", "1"))
threads = int(os.environ.get("FAILOVER_WEB_THREADS", "8"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# h: client (after ProxyFix), r without the query: method and path, s: status, b: bytes, M: ms, request id.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
forwarded_allow_ips = "127.0.0.1"  # gunicorn's own scheme detection; the client address is ProxyFix's job


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker ended: its live gauges (if any) stop counting in /metrics."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        from failover.metrics import process_id_of

        multiprocess.mark_process_dead(process_id_of(worker.pid), directory)


def _into_failover_logs() -> None:
    """With FAILOVER_LOG_FORMAT=json, gunicorn's own and access lines go through failover's JSON handler too."""
    if os.environ.get("FAILOVER_LOG_FORMAT", "text").lower() != "json":
        return
    import logging

    for name in ("gunicorn.error", "gunicorn.access"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def on_starting(server: Any) -> None:
    _into_failover_logs()


def post_fork(server: Any, worker: Any) -> None:
    _into_failover_logs()
