"""Staff outage reports in, a detection reading out, one short answer back.

A report (an SMS keyword from a known contact, or the status page's "Report
a problem" button) is stored - who, which service, when; never the text -
then the ``reports`` source's reading for each service it names goes to
:func:`failover.engine.detection.readings_received`, in the same
transaction, exactly as a probe's would (the policy: domain.staff_reports).
Reports from numbers in no contact list count for nothing and are audited,
masked. Each reporter's reports beyond ``per_number`` in a window are
dropped (audited once an hour), and each reporter gets one answer per window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain import staff_reports
from failover.domain.detection.config import DetectionConfig
from failover.domain.detection.policy import IN_INCIDENT
from failover.domain.report_policy import ReportsPolicy
from failover.domain.runbooks import Catalog
from failover.domain.staff_reports import Parsed, Report
from failover.engine import audit, limits
from failover.engine.detection import decisions as detection
from failover.models import Incident, StaffReport, WatchedService
from failover.privacy import mask_phone

CAP_AUDIT_WINDOW = dt.timedelta(hours=1)
KNOWN_TEXT = "Thanks - we know: {title} (since {since:%H:%M} UTC). We will text you updates."


@dataclass
class Received:
    action: str  # reported | capped | unclear | unknown_sender | throttled | off
    text: str | None = None
    batch_ids: list[int] = field(default_factory=list)
    services: tuple[str, ...] = ()


def policy_of(config: DetectionConfig | None) -> ReportsPolicy | None:
    if config is None or config.reports is None or not config.reports.enabled or not config.watch:
        return None
    return config.reports


def from_sms(
    session: Session,
    catalog: Catalog | None,
    config: DetectionConfig,
    *,
    parsed: Parsed,
    sender: str,
    person_id: str | None,
    now: dt.datetime,
    actor: str = "sms",
) -> Received:
    """A report keyword texted by ``sender`` (``person_id`` None: a number in no contact list)."""
    policy = policy_of(config)
    assert policy is not None, "the caller checks that reports are on"
    services = _watched(config, parsed.services)
    if person_id is None:
        details = {"sender": mask_phone(sender), "services": list(services), "via": "sms"}
        audit.record(session, action="report.unknown_sender", actor=actor, details=details)
        return Received("unknown_sender")  # the reply path answers strangers, within its own limits
    if not services:
        audit.record(
            session, action="report.unclear", actor=actor, target_type="person", target_id=person_id, details={}
        )
        return Received("unclear", f"Which service is down? Text {policy.example()}.")
    return _receive(session, catalog, config, policy, reporter=person_id, services=services, via="sms", now=now)


def from_web(
    session: Session,
    catalog: Catalog | None,
    config: DetectionConfig,
    *,
    client: str,
    service: str | None,
    now: dt.datetime,
) -> Received:
    """The status page's "Report a problem" button; ``client`` identifies the browser (hashed here)."""
    policy = policy_of(config)
    if policy is None or not policy.web:
        return Received("off", "Thanks. Reports from this page are not collected here; please tell IT directly.")
    chosen = config.service(service) if service else policy.suite
    if chosen is None:
        return Received("unclear", "Please choose the service that is not working.")
    reporter = limits.key_for("web", client)[:64]
    verdict = limits.hit(session, "report-" + reporter, limit=policy.web_per_client, now=now, window=policy.window)
    if not verdict.allowed:
        if verdict.first_refusal:
            audit.record(session, action="report.throttled", actor="web", details={"via": "web"})
        return Received("throttled", "Thanks - your report is already counted.")
    return _receive(session, catalog, config, policy, reporter=reporter, services=(chosen,), via="web", now=now)


def _receive(
    session: Session,
    catalog: Catalog | None,
    config: DetectionConfig,
    policy: ReportsPolicy,
    *,
    reporter: str,
    services: tuple[str, ...],
    via: str,
    now: dt.datetime,
) -> Received:
    recent = recent_reports(session, now, policy.window)
    person = reporter if via == "sms" else None
    if staff_reports.capped(recent, reporter, now, policy, policy.per_number * len(services)):
        cap = limits.hit(session, f"report-cap:{reporter}"[:80], limit=1, now=now, window=CAP_AUDIT_WINDOW)
        if cap.allowed:
            details = {"via": via, "per_number": policy.per_number}
            audit.record(
                session,
                action="report.capped",
                actor=via,
                target_type="person" if person else None,
                target_id=person,
                details=details,
            )
        return Received("capped", services=services)
    first = staff_reports.first_in_window(recent, reporter, now, policy)
    new = [Report(now, service, reporter) for service in services]
    for report in new:
        session.add(StaffReport(at=now, service=report.service, reporter=reporter, via=via))
    session.flush()
    tallies = [staff_reports.tally([*recent, *new], service, now, policy) for service in services]
    readings = [staff_reports.reading(t, policy) for t in tallies]
    decided = detection.readings_received(session, catalog, config, readings=readings, now=now)
    audit.record(
        session,
        action="report.received",
        actor=via,
        target_type="person" if person else None,
        target_id=person,
        details={
            "via": via,
            "services": list(services),
            "reporters": {t.service: t.reporters for t in tallies},
            "failing": [t.service for t in tallies if t.failing],
        },
    )
    text = _answer(session, policy, services) if first else None
    return Received("reported", text, list(decided.batch_ids), services)


def recent_reports(session: Session, now: dt.datetime, window: dt.timedelta) -> list[Report]:
    rows = session.execute(
        select(StaffReport.at, StaffReport.service, StaffReport.reporter).where(StaffReport.at > now - window)
    ).all()
    return [Report(at, service, reporter) for at, service, reporter in rows]


def _answer(session: Session, policy: ReportsPolicy, services: Sequence[str]) -> str:
    """The one short answer: what we already know, or the configured thanks."""
    for service in services:
        row = session.get(WatchedService, service)
        if row is not None and row.phase in IN_INCIDENT and row.incident_id is not None:
            incident = session.get(Incident, row.incident_id)
            if incident is not None:
                return KNOWN_TEXT.format(title=incident.title[:80], since=incident.opened_at)
    return policy.reply


def _watched(config: DetectionConfig, services: Sequence[str]) -> tuple[str, ...]:
    named = (config.service(s) for s in services)
    return tuple(dict.fromkeys(s for s in named if s is not None))
