"""Outage detection's use cases: Graph polls, probes, the signals webhook, evaluation, confirm by hand.

Each method is one use case as a Celery task or a view calls it: read a
source (network first, outside any transaction), then hand the readings to
:mod:`failover.engine.detection.decisions` in one transaction, then relay the batches
that decision queued. Nothing here decides anything: the policy is
:mod:`failover.domain.detection.policy`, detection.yaml is read by
:class:`~failover.services.config.Configuration`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from failover.clock import utcnow
from failover.db import Database
from failover.domain.detection.config import DetectionConfig, Probe
from failover.domain.detection.signals import GraphFailure, Reading
from failover.domain.runbooks import Catalog
from failover.engine import optouts, trigger
from failover.engine.detection import decisions
from failover.engine.detection import view as detection_view
from failover.errors import ConfigProblems
from failover.services.audit import Audit
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings
from failover.sources import probes
from failover.sources import signals as inbound
from failover.sources.graph import GraphClient, GraphError
from failover.sources.signals import SignalRejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Beat:
    """One periodic detection job; celery_app turns it into a beat entry for the matching task."""

    name: str  # the beat entry's name
    job: str  # "evaluate" | "graph" | "probe"
    every: dt.timedelta
    args: tuple[str, ...] = ()


class Detection:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        config: Configuration,
        relay: Relay,
        audit: Audit,
        transports: Callable[[], Mapping[str, str]],
    ) -> None:
        self.settings = settings
        self.database = database
        self.files = config
        self.relay = relay
        self.audit = audit
        self.transports = transports
        self._lock = threading.Lock()
        self._graph: GraphClient | None = None

    # -- wiring -------------------------------------------------------------

    def config(self) -> DetectionConfig:
        """The policy in force (detection.yaml or its last good version); ConfigProblems if there is none."""
        return self.files.detection()

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

    def schedule(self) -> list[Beat]:
        """The sources to poll and the evaluation, from detection.yaml (nothing while it has no good version)."""
        try:
            config = self.config()
        except ConfigProblems as exc:
            log.error("detection.yaml has problems, nothing is watched until they are fixed:\n%s", exc)
            return []
        if not config.watch:
            return []
        beats = [Beat("watch-evaluate", "evaluate", config.confirm.evaluate_interval)]
        if self.settings.graph_enabled:
            beats.append(Beat("watch-graph", "graph", config.graph.poll_interval))
        for probe in config.active_probes:
            beats.append(Beat(f"watch-probe-{probe.key}", "probe", probe.interval, (probe.key,)))
        return beats

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
            backoff = decisions.graph_backoff(session)
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
                report = decisions.graph_polled(session, catalog, config, snapshot=snapshot, now=utcnow())
            else:
                report = decisions.graph_failed(session, catalog, config, failure=failure, now=utcnow())
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
            report = decisions.readings_received(session, catalog, config, readings=readings, now=now)
        return self._finish(report, healthy=result.healthy)

    def evaluate(self) -> dict[str, Any]:
        config = self.config()
        if not config.watch:
            return {"skipped": "nothing is watched"}
        catalog = self._catalog()
        with self.database.transaction() as session:
            report = decisions.tick(session, catalog, config, now=utcnow())
        return self._finish(report)

    def receive_signals(
        self, *, body: bytes, signature: str | None, source: str | None, remote: str | None = None
    ) -> dict[str, Any]:
        """The inbound webhook. Raises SignalRejected (audited) for anything unsigned or malformed."""
        secret = self.settings.signals_secret
        try:
            inbound.check_source(source)  # before anything uses it, the audit actor included
            inbound.verify(body, signature, secret.get_secret_value() if secret else None)
            parsed = inbound.parse(body, config=self.config(), now=utcnow(), source=source)
        except SignalRejected as exc:
            named = source if source is not None and inbound.SOURCE.match(source) else "unknown"
            self.audit.webhook_rejected(
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
            report = decisions.readings_received(
                session, catalog, self.config(), readings=parsed.readings, now=utcnow(), received=received
            )
        return {**received, **self._finish(report)}

    def confirm_preview(self, *, service: str, reason: str) -> trigger.OutageConfirm:
        """What confirming an outage of ``service`` by hand would send."""
        catalog = self.files.catalog()
        config = self.config()
        with self.database.reading() as session:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
            return trigger.preview_confirm(
                session,
                catalog,
                config,
                service=service,
                reason=reason,
                prices=self.files.prices,
                opted_out=opted_out,
                transports=self.transports(),
            )

    def confirm_outage(self, *, service: str, actor: str, reason: str) -> dict[str, Any]:
        catalog = self.files.catalog()  # an operator gets the file:line problems, not a silent wait
        with self.database.transaction() as session:
            report = decisions.confirm_by_hand(
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
        return self.files.catalog_or_none()  # None: detection keeps reading but cannot act (logged at reload)

    def _finish(self, report: decisions.Report, **extra: Any) -> dict[str, Any]:
        for line in report.transitions:
            log.info("watch: %s", line)
        if report.opened is not None:
            log.warning("watch: outage confirmed, incident %s opened", report.opened)
        for incident_id in report.resolved:
            log.warning("watch: incident %s resolved by the watcher; all-clear queued", incident_id)
        broker_ok = self.relay.publish(report.batch_ids)
        return {**report.as_dict(), "broker_ok": broker_ok, **extra}


def _probe_lifetime(probe: Probe) -> dt.timedelta:
    """A probe's vote is forgotten once it missed about three runs (beat stopped, worker busy)."""
    return max(3 * probe.interval, probe.interval + 2 * probe.timeout)
