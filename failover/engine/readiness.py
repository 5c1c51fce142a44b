"""Readiness checks that read our own database: the service itself, break-glass access, recipients.

Heartbeats are written here too: workers every ``HEARTBEAT_EVERY`` seconds
(a worker bootstep, see failover/heartbeats.py), the beat whenever it
publishes (at most as often). Doctor calls a process dead once its heartbeat
is older than ``HEARTBEAT_STALE``; compose health checks can ask the same
question with ``failover doctor --only service.worker``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from failover.domain import readiness as r
from failover.domain.readiness import Finding
from failover.domain.runbooks import Catalog
from failover.models import Activation, CanaryRun, Delivery, DeliveryStatus, Heartbeat, Incident, User
from failover.privacy import mask_address

HEARTBEAT_EVERY = 30.0  # seconds
HEARTBEAT_STALE = dt.timedelta(seconds=120)
SERVICE = "Service"
ACCESS = "Break-glass"
INDEPENDENCE = "Independence"


def beat(session: Session, *, name: str, kind: str, now: dt.datetime, pid: int | None = None) -> None:
    """Record that ``name`` (``worker@host``, ``beat``) is alive now."""
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, kind=kind, at=now, started_at=now, pid=pid))
    else:
        if row.pid != pid:
            row.started_at = now
        row.at, row.pid, row.kind = now, pid, kind


def heartbeats(session: Session, *, now: dt.datetime) -> list[Finding]:
    """A worker and the beat alive: each kind needs one heartbeat younger than HEARTBEAT_STALE."""
    rows = session.scalars(select(Heartbeat).order_by(Heartbeat.at.desc())).all()
    findings = []
    fixes = {
        "worker": "start one: `failover worker` (or `docker compose up -d worker`); nothing is sent without it",
        "beat": "start exactly one: `failover beat`; without it nothing retries, follows up or watches Microsoft",
    }
    for kind, what in (("worker", "a worker is alive (heartbeat)"), ("beat", "the beat is alive (heartbeat)")):
        mine = [row for row in rows if row.kind == kind]
        alive = [row for row in mine if now - row.at <= HEARTBEAT_STALE]
        check = f"service.{kind}"
        if alive:
            names = ", ".join(row.name for row in alive)
            findings.append(r.ok(check, SERVICE, what, f"{len(alive)} alive: {names}"))
            if kind == "beat" and len(alive) > 1:
                findings[-1] = r.warn(
                    check, SERVICE, what, f"{len(alive)} beats alive ({names})", "run exactly one beat"
                )
            continue
        last = mine[0].at if mine else None
        _, ago = r.stale(last, now=now, max_age=HEARTBEAT_STALE)
        findings.append(r.fail(check, SERVICE, what, f"last heartbeat: {ago}", fixes[kind]))
    return findings


def queue(session: Session, *, now: dt.datetime, max_age: dt.timedelta) -> Finding:
    """Not backed up: the oldest due ``pending`` ledger row has not waited longer than ``max_age``."""
    what = "the send queue is not backed up (oldest due pending message)"
    due = func.coalesce(Delivery.next_attempt_at, Delivery.updated_at)
    oldest = session.scalar(select(func.min(due)).where(Delivery.status == DeliveryStatus.PENDING, due <= now))
    waiting = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.PENDING, due <= now)) or 0
    if oldest is None:
        return r.ok("service.queue", SERVICE, what, "nothing waiting")
    if oldest.tzinfo is None:  # func.min bypasses the column type on some backends
        oldest = oldest.replace(tzinfo=dt.UTC)
    age = now - oldest
    detail = f"{waiting} waiting, the oldest for {r.age_text(age)}"
    if age > max_age:
        return r.fail(
            "service.queue",
            SERVICE,
            what,
            detail,
            "check that workers run and the broker is reachable; `failover doctor` lists both",
        )
    return r.ok("service.queue", SERVICE, what, detail)


def last_canary(session: Session, *, now: dt.datetime, interval: float, configured: bool) -> Finding:
    what = "the last canary reached its target"
    if not configured or not interval:
        return r.skipped(
            "service.canary",
            SERVICE,
            what,
            "no canary targets configured",
            "set FAILOVER_CANARY_SMS / FAILOVER_CANARY_EMAIL to numbers and personal addresses that answer",
        )
    runs = session.scalars(
        select(CanaryRun).where(CanaryRun.outcome.is_not(None)).order_by(CanaryRun.started_at.desc()).limit(20)
    ).all()
    if not runs:
        return r.warn("service.canary", SERVICE, what, "no canary has finished yet", "run `failover canary run`")
    latest = runs[0].started_at
    batch = [run for run in runs if run.started_at >= latest - dt.timedelta(minutes=5)]
    failed = [run for run in batch if run.outcome != "ok"]
    too_old, ago = r.stale(latest, now=now, max_age=dt.timedelta(seconds=interval * 2))
    detail = f"{len(batch) - len(failed)} of {len(batch)} arrived, {ago}"
    if failed:
        items = tuple(f"{run.channel} via {run.transport} to {run.target}: {run.detail}" for run in failed)
        return r.fail(
            "service.canary", SERVICE, what, detail, "see the canary history below; fix the provider", items=items
        )
    if too_old:
        return r.warn("service.canary", SERVICE, what, detail, "the beat schedules canaries: is it running?")
    return r.ok("service.canary", SERVICE, what, detail)


def last_drill(session: Session, *, now: dt.datetime, max_age: dt.timedelta) -> Finding:
    what = f"a drill ran within {max_age.days} days"
    last = session.scalar(select(func.max(Incident.opened_at)).where(Incident.drill.is_(True)))
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    too_old, ago = r.stale(last, now=now, max_age=max_age)
    if too_old:
        return r.warn(
            "service.drill", SERVICE, what, f"last drill: {ago}", "run one: `failover activate <runbook> --drill`"
        )
    return r.ok("service.drill", SERVICE, what, f"last drill: {ago}")


def break_glass(session: Session, *, now: dt.datetime, max_age: dt.timedelta) -> list[Finding]:
    """Operators and admins who could not get in on the day: stale logins, no second factor."""
    people = session.scalars(
        select(User).where(User.disabled.is_(False), User.role.in_(("operator", "admin"))).order_by(User.username)
    ).all()
    if not people:
        return [
            r.fail(
                "access.accounts",
                ACCESS,
                "someone can trigger failover",
                "no enabled operator or admin account",
                "create one: `failover init` prints how, or Admin > Users",
            )
        ]
    drilled = dict(
        session.execute(
            select(Activation.requested_by, func.max(Activation.created_at))
            .where(Activation.drill.is_(True))
            .group_by(Activation.requested_by)
        ).all()
    )
    stale_people, no_factor = [], []
    for user in people:
        seen = [t for t in (user.last_login_at, drilled.get(user.username)) if t is not None]
        seen = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in seen]
        too_old, ago = r.stale(max(seen) if seen else None, now=now, max_age=max_age)
        if too_old:
            stale_people.append(f"{user.username} ({user.role}): last login or drill {ago}")
        if not user.totp_secret:
            no_factor.append(f"{user.username} ({user.role})")
    days = max_age.days
    findings = []
    what = f"every operator logged in or drilled within {days} days (FAILOVER_BREAKGLASS_MAX_AGE)"
    if stale_people:
        findings.append(
            r.warn(
                "access.recent",
                ACCESS,
                what,
                f"{len(stale_people)} of {len(people)} would be guessing their password on the day",
                "have each listed person log in (and run a drill) now; disable accounts nobody uses",
                items=tuple(stale_people),
            )
        )
    else:
        findings.append(r.ok("access.recent", ACCESS, what, f"all {len(people)} accounts"))
    what = "every operator has a second factor (TOTP)"
    if no_factor:
        findings.append(
            r.warn(
                "access.second_factor",
                ACCESS,
                what,
                f"{len(no_factor)} of {len(people)} without one",
                "each listed person enrols under Account > Two-factor",
                items=tuple(no_factor),
            )
        )
    else:
        findings.append(r.ok("access.second_factor", ACCESS, what, f"all {len(people)} accounts"))
    return findings


def tenant_addresses(catalog: Catalog | None, tenant_domains: Iterable[str]) -> Finding:
    """Personal addresses on the tenant's own domains: the backup mail to them dies with Microsoft 365."""
    what = "personal addresses are not on the tenant's own domains"
    check = "independence.recipients"
    domains = {d.lower() for d in tenant_domains}
    if not domains:
        return r.skipped(
            check, INDEPENDENCE, what, "FAILOVER_TENANT_DOMAINS is not set", "set it to your Microsoft 365 domains"
        )
    if catalog is None:
        return r.skipped(check, INDEPENDENCE, what, "no contacts are in force", "fix config/contacts.yaml")
    on_tenant = [p for p in catalog.contacts.people if p.email and r.domain_of(str(p.email)) in domains]
    with_email = sum(1 for p in catalog.contacts.people if p.email)
    if on_tenant:
        return r.warn(
            check,
            INDEPENDENCE,
            what,
            f"{len(on_tenant)} of {with_email} addresses are on {', '.join(sorted(domains))}",
            "ask these people for a personal address outside Microsoft 365 (or rely on SMS for them)",
            items=tuple(f"{p.name} ({p.id}): {mask_address(str(p.email))}" for p in on_tenant),
        )
    return r.ok(check, INDEPENDENCE, what, f"none of {with_email} addresses")


def uses_voice(catalog: Catalog | None) -> bool:
    """Whether a runbook can place a call (a voice step, fallback or escalation)."""
    if catalog is None:
        return False
    for runbook in catalog.runbooks.values():
        for step in (*runbook.steps, *getattr(runbook, "on_resolve", ())):
            if step.channel == "voice" or any(f.channel == "voice" for f in step.fallback):
                return True
        if any(getattr(entry, "channel", None) == "voice" for entry in runbook.escalation):
            return True
    return False


def largest_sms_runbook(session: Session, catalog: Catalog | None) -> tuple[str, int] | None:
    """The runbook whose steps text the most people, and how many (people with a number in its SMS steps' groups).

    Counted in the people table, not planned: doctor must stay quick at 50,000 people.
    """
    from failover.domain.contacts import parse_ref
    from failover.models_people import PersonGroup, PersonRow

    if catalog is None:
        return None
    best: tuple[str, int] | None = None
    for runbook in catalog.runbooks.values():
        refs = [parse_ref(ref) for step in runbook.steps if step.channel == "sms" for ref in step.to]
        groups = sorted({name for kind, name in refs if kind == "group"})
        named = sorted({name for kind, name in refs if kind == "person"})
        if not groups and not named:
            continue
        members = select(PersonGroup.person_id).where(PersonGroup.group_name.in_(groups))
        query = (
            select(func.count())
            .select_from(PersonRow)
            .where(
                PersonRow.removed_at.is_(None),
                PersonRow.phone.is_not(None),
                PersonRow.id.in_(members) | PersonRow.id.in_(named),
            )
        )
        count = int(session.scalar(query) or 0)
        if best is None or count > best[1]:
            best = (runbook.id, count)
    return best
