"""``failover doctor`` and the Readiness page: every readiness check, in one report.

Each area is gathered by the module that knows it (channels/ for the
providers' SDKs, sources/ for DNS, TLS and Graph, engine/readiness.py for our
own database); this module only decides what applies to this configuration
and keeps one area's crash from hiding the others. A check that does not
apply says "skipped" and why, so the page always shows the whole list.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.db import Database, sqlite_path
from failover.domain import readiness as r
from failover.domain.people import PeopleConfig
from failover.domain.readiness import Finding, Report
from failover.domain.runbooks import Catalog
from failover.engine import readiness
from failover.settings import Settings

if TYPE_CHECKING:
    import dns.resolver

log = logging.getLogger(__name__)
DRILL_MAX_AGE = dt.timedelta(days=90)


@dataclass(frozen=True)
class Context:
    settings: Settings
    database: Database
    catalog: Catalog | None
    now: dt.datetime
    schema: Finding  # the migrations check: areas reading our tables need it ok


Area = Callable[[Context], list[Finding]]


def run(
    settings: Settings,
    database: Database,
    catalog: Catalog | None,
    *,
    now: dt.datetime,
    only: Iterable[str] = (),
) -> Report:
    """Run every area (or only the checks whose id starts with one of ``only``) and report."""
    context = Context(settings, database, catalog, now, _migrations(database))
    prefixes = tuple(only)
    chosen = [(name, area) for name, area in AREAS if not prefixes or name in {p.split(".")[0] for p in prefixes}]
    # The areas wait on different servers (Twilio, SendGrid, DNS, Entra ID): ask them at once, so the page
    # takes as long as the slowest area rather than all of them together.
    with ThreadPoolExecutor(max_workers=len(chosen) or 1, thread_name_prefix="doctor") as pool:
        results = list(pool.map(lambda item: _area(context, *item), chosen))
    findings = [f for found in results for f in found if not prefixes or f.check.startswith(prefixes)]
    return Report.of(findings, now=now)


def _area(context: Context, name: str, area: Area) -> list[Finding]:
    try:
        return area(context)
    except Exception as exc:  # one broken area must not hide the others; say which and why
        log.exception("readiness area %s crashed", name)
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return [r.fail(f"{name}.error", name, f"the {name} checks ran", detail, "see the log; report it")]


# -- areas --------------------------------------------------------------------------------------


def _unreadable(ctx: Context, check: str, area: str) -> list[Finding]:
    return [r.skipped(check, area, "checks that read the database", "the database schema is not current")]


def service(ctx: Context) -> list[Finding]:
    findings = [ctx.schema, _broker(ctx.settings)]
    if ctx.schema.result != r.Result.OK:
        return findings + _unreadable(ctx, "service.state", "Service")
    with ctx.database.reading() as session:
        findings += readiness.heartbeats(session, now=ctx.now)
        findings.append(readiness.queue(session, now=ctx.now, max_age=dt.timedelta(seconds=ctx.settings.queue_max_age)))
        targets = ctx.settings.canary_targets
        findings.append(
            readiness.last_canary(
                session,
                now=ctx.now,
                interval=ctx.settings.canary_interval,
                configured=any(targets.values()),
            )
        )
        findings.append(readiness.last_drill(session, now=ctx.now, max_age=DRILL_MAX_AGE))
    findings.append(_people_snapshot(ctx))
    return findings


def access(ctx: Context) -> list[Finding]:
    if ctx.schema.result != r.Result.OK:
        return _unreadable(ctx, "access.recent", "Break-glass")
    with ctx.database.reading() as session:
        return readiness.break_glass(session, now=ctx.now, max_age=dt.timedelta(days=ctx.settings.breakglass_max_age))


def twilio(ctx: Context) -> list[Finding]:
    settings = ctx.settings
    if not settings.twilio_enabled:
        return [
            r.skipped(
                "twilio.credentials",
                "Twilio",
                "Twilio is configured",
                "no TWILIO_ACCOUNT_SID: SMS and calls go to the outbox, nobody is texted",
                "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM",
            )
        ]
    from failover.channels import twilio_readiness

    assert settings.twilio_account_sid and settings.twilio_auth_token
    found = twilio_readiness.check(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        api_base=settings.twilio_api_base,
        sender=settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        public_url=settings.public_url,
        min_balance=settings.twilio_min_balance,
        voice=readiness.uses_voice(ctx.catalog),
    )
    return found + sender_rate(ctx)


def sender_rate(ctx: Context) -> list[Finding]:
    """Whether Twilio's senders hand the largest runbook's SMS out within SLOW_HANDOUT_S (declared MPS)."""
    from failover.domain import pacing

    check, area, what = "twilio.sender_rate", "Twilio", "the senders hand the largest runbook's SMS out quickly"
    if ctx.schema.result != r.Result.OK:
        return _unreadable(ctx, check, area)
    with ctx.database.reading() as session:
        largest = readiness.largest_sms_runbook(session, ctx.catalog)
    if largest is None or largest[1] == 0:
        return [r.skipped(check, area, what, "no runbook sends SMS to anyone")]
    runbook_id, people = largest
    mps = ctx.settings.twilio_sender_mps
    if mps is None:
        return [
            r.skipped(
                check,
                area,
                what,
                f"{pacing.SETTING} is not declared: how long Twilio takes to hand out {runbook_id}'s "
                f"{people:,} SMS is unknown",
                f"set {pacing.SETTING} to your senders' total messages per second",
            )
        ]
    seconds = pacing.handout_seconds(people, mps) or 0.0
    said = f"{runbook_id}: {people:,} SMS at {mps:g} MPS take about {pacing.duration(seconds)} to hand out"
    if pacing.slow(people, mps) is None:
        return [r.ok(check, area, what, said)]
    limit = pacing.duration(pacing.SLOW_HANDOUT_S)
    return [
        r.warn(
            check,
            area,
            what,
            f"{said} (more than {limit}; at least one segment each)",
            f"add senders (numbers to the Messaging Service, a short code) so that {pacing.SETTING} reaches "
            f"{math.ceil(people / pacing.SLOW_HANDOUT_S * 10) / 10:g} MPS",
        )
    ]


def vonage(ctx: Context) -> list[Finding]:
    settings = ctx.settings
    if not settings.vonage_api_key:
        return [r.skipped("vonage.credentials", "Vonage", "Vonage is configured", "skipped: not configured (optional)")]
    from failover.channels import vonage_readiness

    assert settings.vonage_api_secret
    return vonage_readiness.check(
        api_key=settings.vonage_api_key,
        api_secret=settings.vonage_api_secret.get_secret_value(),
        api_base=settings.vonage_api_base,
    )


def sendgrid(ctx: Context) -> list[Finding]:
    settings = ctx.settings
    if not settings.sendgrid_enabled:
        return [
            r.skipped(
                "sendgrid.key",
                "SendGrid",
                "SendGrid is configured",
                "no SENDGRID_API_KEY: backup mail goes to the outbox, nobody is mailed",
                "set SENDGRID_API_KEY and SENDGRID_FROM",
            )
        ]
    from failover.channels import sendgrid_readiness

    assert settings.sendgrid_api_key and settings.sendgrid_from
    key = settings.sendgrid_webhook_public_key
    return sendgrid_readiness.check(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        api_base=settings.sendgrid_api_base,
        sender=settings.sendgrid_from,
        webhook_key=key.get_secret_value() if key else None,
    )


def independence(ctx: Context) -> list[Finding]:
    from failover.sources import independence as ind

    settings = ctx.settings
    resolver = ind.resolver(settings.dns_nameservers)
    findings: list[Finding] = []
    if settings.sendgrid_from:
        findings += ind.mail_domain(resolver, r.domain_of(settings.sendgrid_from))
    else:
        findings.append(
            r.skipped("independence.mx", "Independence", "the sending domain is not Microsoft's", "no SENDGRID_FROM")
        )
    findings.append(ind.public_host(resolver, settings.public_url))
    findings.append(ind.certificate(settings.public_url, now=ctx.now))
    findings += _publish_targets(ctx, resolver)
    findings.append(readiness.tenant_addresses(ctx.catalog, settings.tenant_domain_list))
    return findings


def graph(ctx: Context) -> list[Finding]:
    from failover.sources import graph_readiness
    from failover.sources.graph import GraphClient

    settings = ctx.settings
    client = None
    if settings.graph_enabled:
        assert settings.graph_tenant_id and settings.graph_client_id and settings.graph_client_secret
        client = GraphClient(
            tenant_id=settings.graph_tenant_id,
            client_id=settings.graph_client_id,
            client_secret=settings.graph_client_secret.get_secret_value(),
            api_base=settings.graph_api_base,
            authority_base=settings.graph_authority_base,
            max_retry_wait=0,
        )
    try:
        return graph_readiness.check(
            client,
            secret_expires=settings.graph_secret_expires,
            now=ctx.now,
            need_users=_people_config(settings).source("graph") is not None,  # people.yaml syncs Entra ID users
            secret_hint=settings.graph_client_secret.get_secret_value()[:3] if settings.graph_client_secret else None,
        )
    finally:
        if client is not None:
            client.close()


AREAS: list[tuple[str, Area]] = [
    ("service", service),
    ("access", access),
    ("twilio", twilio),
    ("vonage", vonage),
    ("sendgrid", sendgrid),
    ("independence", independence),
    ("graph", graph),
]


# -- small checks -------------------------------------------------------------------------------


def _migrations(database: Database) -> Finding:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from failover.db import alembic_config

    what = "the database schema is current (migrations)"
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        with database.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as exc:  # any driver error: the database is what is wrong
        return r.fail("service.migrations", "Service", what, f"cannot read it: {type(exc).__name__}", "check it")
    if current != heads:
        return r.fail(
            "service.migrations",
            "Service",
            what,
            f"database at {', '.join(sorted(current)) or 'nothing'}, code at {', '.join(sorted(heads))}",
            "run `failover init` (it migrates) before starting the new version",
        )
    return r.ok("service.migrations", "Service", what, f"at {', '.join(sorted(heads))}")


def _broker(settings: Settings) -> Finding:
    what = "the broker is reachable"
    url = settings.celery_broker_url
    if settings.embedded_broker:
        path = sqlite_path(url)
        if path is not None and path.parent.is_dir():
            return r.ok("service.broker", "Service", what, "embedded (a SQLite file in the data dir)")
        return r.fail("service.broker", "Service", what, "the data dir is missing", "run `failover init`")
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as exc:
            return r.fail(
                "service.broker",
                "Service",
                what,
                f"Redis did not answer: {type(exc).__name__}",
                "start Redis or fix FAILOVER_BROKER_URL; activations wait in the database until it is back",
            )
        return r.ok("service.broker", "Service", what, "Redis answers")
    return r.skipped("service.broker", "Service", what, "not a broker doctor knows how to ping")


def _people_config(settings: Settings) -> PeopleConfig:
    """config/people.yaml as it validates (defaults when missing or broken: `runbooks check` says why)."""
    from failover.domain import people

    return people.load_config(people.people_file(settings.config_dir), [])


def _people_snapshot(ctx: Context) -> Finding:
    """The roster synced from Entra ID is fresh: people.yaml's safety.stale_after, as the console says (issue 13)."""
    from failover.models_people import PeopleSource

    what = "the people snapshot is fresh"
    config = _people_config(ctx.settings)
    if config.source("graph") is None:
        return r.skipped(
            "service.people",
            "Service",
            what,
            "people come from files (contacts.yaml, people.yaml sources): no directory sync configured",
        )
    stale_after = config.safety.stale_after
    with ctx.database.reading() as session:
        state = session.get(PeopleSource, "graph")
        last_ok = state.last_ok_at if state else None
        last_error = state.last_error if state else None
    failed = f"; the last sync failed: {last_error[:200]}" if last_error else ""
    fix = "run `failover people sync` and read its error; check the Graph app's User.Read.All permission"
    if last_ok is None:
        return r.fail("service.people", "Service", what, "never synced from Entra ID" + failed, fix)
    age = ctx.now - last_ok
    as_of = f"roster as of {last_ok:%Y-%m-%d %H:%M} UTC ({_ago(age)} ago)"
    if age > stale_after:
        return r.fail(
            "service.people",
            "Service",
            what,
            f"{as_of}, older than stale_after ({_ago(stale_after)})" + failed,
            fix,
        )
    if last_error:
        return r.warn("service.people", "Service", what, as_of + failed, fix)
    return r.ok("service.people", "Service", what, as_of)


def _ago(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{max(seconds, 0) // 60} min"


def _publish_targets(ctx: Context, res: dns.resolver.Resolver) -> list[Finding]:
    from failover.domain import statuspage
    from failover.errors import ConfigProblems
    from failover.sources import independence as ind

    try:
        page = statuspage.load(ctx.settings.config_dir, ())
    except ConfigProblems as exc:
        return [
            r.fail(
                "independence.publish_target",
                "Independence",
                "the status page's publish targets are not served from Microsoft",
                f"config/status.yaml is broken: {exc}"[:300],
                "run `failover runbooks check` and fix config/status.yaml",
            )
        ]
    return ind.publish_targets(res, page.targets)
