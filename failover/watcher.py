"""The watcher's wiring: detection.yaml, the Graph client and the probes, composed for the Runtime.

Each method is one use case as a Celery task or a view calls it: read a
source (network first, outside any transaction), then hand the readings to
:mod:`failover.engine.detection` in one transaction, then relay the batches
that decision queued. Nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from failover import logs
from failover.clock import utcnow
from failover.domain import detection as detection_file
from failover.domain.detection import DetectionConfig, Probe
from failover.domain.runbooks import Catalog
from failover.domain.signals import GraphFailure, Reading
from failover.engine import detection, detection_view
from failover.errors import ConfigProblems
from failover.sources import probes, webhook
from failover.sources.graph import GraphClient, GraphError
from failover.sources.webhook import SignalRejected

if TYPE_CHECKING:
    from failover.runtime import Runtime

log = logging.getLogger(__name__)

# Beat entries' task names; tasks.py registers them.
GRAPH_TASK = "failover.tasks.poll_graph"
PROBE_TASK = "failover.tasks.run_probe"
EVALUATE_TASK = "failover.tasks.evaluate_detection"


class Watcher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.database = runtime.database
        self._config: tuple[tuple[int, int] | None, detection_file.Loaded] | None = None
        self._lock = threading.Lock()
        self._graph: GraphClient | None = None

    # -- wiring -------------------------------------------------------------

    def config(self) -> DetectionConfig:
        """The policy in force: detection.yaml, or its last good version while the file is broken.

        ConfigProblems (file:line) only when it is broken and no good version was ever seen.
        """
        loaded = self.loaded()
        if loaded.config is None:
            raise ConfigProblems(loaded.problems)
        return loaded.config

    def config_or_none(self) -> DetectionConfig | None:
        """The policy in force, or None while detection.yaml is broken with no good version."""
        return self.loaded().config

    def loaded(self) -> detection_file.Loaded:
        """detection.yaml judged as domain.lastgood judges every file; reloaded when it changes."""
        path = detection_file.detection_file(self.settings.config_dir)
        try:
            stat = path.stat()
            signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if self._config is None or self._config[0] != signature:
                snapshots = self.runtime.snapshots
                loaded = detection_file.assemble(self.settings.config_dir, snapshots.get)
                snapshots.remember(loaded.good)
                if loaded.broken is not None:
                    logs.broken_config((loaded.broken,))
                self._config = (signature, replace(loaded, good={}))
            return self._config[1]

    def graph(self) -> GraphClient | None:
        settings = self.settings
        if not settings.graph_enabled:
            return None
        policy = self.config().graph
        with self._lock:
            if self._graph is None:
                assert settings.graph_tenant_id and settings.graph_client_id and settings.graph_client_secret
                self._graph = GraphClient(
                    tenant_id=settings.graph_tenant_id,
                    client_id=settings.graph_client_id,
                    client_secret=settings.graph_client_secret.get_secret_value(),
                    api_base=settings.graph_api_base,
                    authority_base=settings.graph_authority_base,
                    timeout=policy.timeout.total_seconds(),
                    max_retry_wait=policy.max_retry_wait.total_seconds(),
                )
            return self._graph

    def schedule(self) -> dict[str, dict[str, Any]]:
        """Celery beat entries for the sources and the evaluation, from detection.yaml."""
        try:
            config = self.config()
        except ConfigProblems as exc:
            log.error("detection.yaml has problems, nothing is watched until they are fixed:\n%s", exc)
            return {}
        if not config.watch:
            return {}
        entries: dict[str, dict[str, Any]] = {
            "watch-evaluate": _entry(EVALUATE_TASK, config.confirm.evaluate_interval),
        }
        if self.settings.graph_enabled:
            entries["watch-graph"] = _entry(GRAPH_TASK, config.graph.poll_interval)
        for probe in config.active_probes:
            entries[f"watch-probe-{probe.key}"] = _entry(PROBE_TASK, probe.interval, args=(probe.key,))
        return entries

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()

    # -- use cases ----------------------------------------------------------

    def poll_graph(self) -> dict[str, Any]:
        config = self.config()
        client = self.graph()
        if client is None or not config.watch:
            return {"skipped": "Graph is not configured (FAILOVER_GRAPH_*) or nothing is watched"}
        with self.database.reading() as session:
            backoff = detection.graph_backoff(session)
        if backoff is not None and utcnow() < backoff:
            return {"skipped": f"Graph asked us to wait until {backoff.isoformat()}"}
        failure: GraphFailure | None = None
        try:
            snapshot = client.snapshot()
        except GraphError as exc:
            failure = exc.failure
            log.warning("Graph service health poll failed (%s): %s", failure.kind, failure.detail)
        catalog = self._catalog()
        with self.database.transaction() as session:
            if failure is None:
                report = detection.graph_polled(session, catalog, config, snapshot=snapshot, now=utcnow())
            else:
                report = detection.graph_failed(session, catalog, config, failure=failure, now=utcnow())
        return self._finish(report, graph=failure.kind if failure else "ok")

    def run_probe(self, key: str) -> dict[str, Any]:
        config = self.config()
        probe = config.probe(key)
        if probe is None:
            return {"skipped": f"no enabled probe '{key}' in detection.yaml"}
        result = probes.run(probe)
        now = utcnow()
        readings = [
            Reading(
                origin=f"probe:{probe.key}",
                voter=f"probe:{probe.key}",
                service=config.service(service) or service,
                failing=not result.healthy,
                summary=result.summary,
                kind="probe",
                details=result.details,
                expires_at=now + _probe_lifetime(probe),
            )
            for service in probe.services
        ]
        catalog = self._catalog()
        with self.database.transaction() as session:
            report = detection.readings_received(session, catalog, config, readings=readings, now=now)
        return self._finish(report, healthy=result.healthy)

    def evaluate(self) -> dict[str, Any]:
        config = self.config()
        if not config.watch:
            return {"skipped": "nothing is watched"}
        catalog = self._catalog()
        with self.database.transaction() as session:
            report = detection.tick(session, catalog, config, now=utcnow())
        return self._finish(report)

    def receive_signals(
        self, *, body: bytes, signature: str | None, source: str | None, remote: str | None = None
    ) -> dict[str, Any]:
        """The inbound webhook. Raises SignalRejected (audited) for anything unsigned or malformed."""
        secret = self.settings.signals_secret
        try:
            webhook.check_source(source)  # before anything uses it, the audit actor included
            webhook.verify(body, signature, secret.get_secret_value() if secret else None)
            parsed = webhook.parse(body, config=self.config(), now=utcnow(), source=source)
        except SignalRejected as exc:
            named = source if source is not None and webhook.SOURCE.match(source) else "unknown"
            self.runtime.webhook_rejected(
                endpoint="signals",
                reason=exc.message,
                status=exc.status,
                remote=remote,
                actor=f"webhook:{named}",
                size=len(body),
            )
            raise
        received = {
            "source": parsed.source,
            "format": parsed.format,
            "accepted": len(parsed.readings),
            "ignored": parsed.ignored[:20],
        }
        catalog = self._catalog()
        with self.database.transaction() as session:
            report = detection.readings_received(
                session, catalog, self.config(), readings=parsed.readings, now=utcnow(), received=received
            )
        return {**received, **self._finish(report)}

    def confirm_outage(self, *, service: str, actor: str, reason: str) -> dict[str, Any]:
        catalog = self.runtime.catalog()  # an operator gets the file:line problems, not a silent wait
        with self.database.transaction() as session:
            report = detection.confirm_by_hand(
                session, catalog, self.config(), service=service, actor=actor, reason=reason, now=utcnow()
            )
        return self._finish(report)

    def overview(self) -> dict[str, Any]:
        """The dashboard's view; a broken detection.yaml is shown, not raised."""
        try:
            config, problems = self.config(), None
        except ConfigProblems as exc:
            config, problems = DetectionConfig(), str(exc)
        with self.database.reading() as session:
            data = detection_view.overview(session, config, utcnow())
        return {**data, "problems": problems, "graph_configured": self.settings.graph_enabled}

    # -- helpers --------------------------------------------------------------

    def _catalog(self) -> Catalog | None:
        return self.runtime.catalog_or_none()  # None: detection keeps reading but cannot act (logged at reload)

    def _finish(self, report: detection.Report, **extra: Any) -> dict[str, Any]:
        for line in report.transitions:
            log.info("watch: %s", line)
        if report.opened is not None:
            log.warning("watch: outage confirmed, incident %s opened", report.opened)
        for incident_id in report.resolved:
            log.warning("watch: incident %s resolved by the watcher; all-clear queued", incident_id)
        broker_ok = self.runtime.relay(report.batch_ids)
        return {**report.as_dict(), "broker_ok": broker_ok, **extra}


def _entry(task: str, every: dt.timedelta, args: tuple[Any, ...] = ()) -> dict[str, Any]:
    seconds = every.total_seconds()
    # A poll that waited in the queue longer than its own interval is stale: the next one is already due.
    return {"task": task, "schedule": seconds, "args": args, "options": {"expires": max(seconds, 1.0)}}


def _probe_lifetime(probe: Probe) -> dt.timedelta:
    """A probe's vote is forgotten once it missed about three runs (beat stopped, worker busy)."""
    return max(3 * probe.interval, probe.interval + 2 * probe.timeout)
