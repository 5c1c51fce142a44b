"""Prometheus instruments counted inside processes: provider requests, their latency, 429s, delivery outcomes.

Several gunicorn workers and several Celery workers each count their own
requests, so these use prometheus-client's multiprocess mode: each process
writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
(default ``<data dir>/metrics``; in docker compose a volume shared by web,
workers and beat), and ``/metrics`` (failover/web/metrics.py) adds them up at
scrape time. File names carry host name and pid, so containers that share the
volume never write the same file.

Everything that can be read from the database instead (messages by state,
queue depth, watcher state, last Graph poll) is computed at scrape time in
failover/engine/gauges.py: always right, whichever process did the work.

``setup`` must run before the first instrument is used (the CLI calls it at
the start of each process); without it, instruments count in this process
only (unit tests, the Flask test client).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_lock = threading.Lock()


def setup(data_dir: Path, metrics_dir: Path | None = None, *, fresh: bool = False) -> Path:
    """Count into ``metrics_dir`` (PROMETHEUS_MULTIPROC_DIR, default ``<data_dir>/metrics``) from now on.

    ``fresh`` empties it first; only ``failover up`` does, before it starts its three processes.
    """
    directory = metrics_dir or data_dir / "metrics"
    if fresh and directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(directory)
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(_process_id)
    return directory


def _process_id() -> str:
    return process_id_of(os.getpid())


def process_id_of(pid: int) -> str:
    """Host and pid: unique across containers sharing the directory (no '_': the collector splits on it)."""
    return f"{socket.gethostname().replace('_', '-')}-{pid}"


class _Instruments:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "failover_provider_requests_total",
            "Requests to a provider, by how they ended (ok, throttled = HTTP 429, down, answered = an error answer).",
            ["transport", "outcome"],
        )
        self.latency = Histogram(
            "failover_provider_request_seconds",
            "Time one provider request took (an SMS, a mail batch, a call).",
            ["transport"],
            buckets=LATENCY_BUCKETS,
        )
        self.refused = Counter(
            "failover_provider_refused_total",
            "Requests not made because the provider's circuit was open.",
            ["transport"],
        )
        self.outcomes = Counter(
            "failover_delivery_outcomes_total",
            "Ledger rows that left 'sending': sent, retry (scheduled again), in_doubt, failed.",
            ["channel", "transport", "outcome"],
        )
        self.publish_failures = Counter(
            "failover_publish_failures_total",
            "Failed publications of the status page (or another publish target).",
            ["target"],
        )
        self.events = Counter(
            "failover_events_total",
            "Operational events other parts of failover count (canaries, people syncs...): kind and result.",
            ["kind", "result"],
        )


@cache
def instruments() -> _Instruments:
    with _lock:
        return _Instruments()


# -- what the rest of failover calls --------------------------------------------------------------------


def provider_request(transport: str, outcome: str, seconds: float) -> None:
    item = instruments()
    item.requests.labels(transport, outcome).inc()
    item.latency.labels(transport).observe(seconds)


def circuit_refused(transport: str) -> None:
    instruments().refused.labels(transport).inc()


OUTCOME_OF_STATUS = {"sent": "sent", "pending": "retry", "in_doubt": "in_doubt", "failed": "failed"}


def delivery_outcomes(channel: str, transport: str, counts: Mapping[str, int]) -> None:
    item = instruments()
    for status, count in counts.items():
        if count:
            item.outcomes.labels(channel, transport, OUTCOME_OF_STATUS.get(status, status)).inc(count)


def publish_failed(target: str) -> None:
    """Hook for status-page publishing (and any other publish target): one failed publication."""
    instruments().publish_failures.labels(target).inc()


def event(kind: str, result: str) -> None:
    """Hook for other operational checks (a canary run: kind="canary", result="ok" | "failed")."""
    instruments().events.labels(kind, result).inc()


def registry(directory: Path | None = None) -> Any:
    """This host's process counters: every process's files in ``directory`` (once any process wrote
    there), else the counters of this process alone."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if directory is None or not directory.is_dir():
        instruments()  # registered in the default registry
        return REGISTRY
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=str(directory))
    return combined
