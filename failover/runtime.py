"""The composition root: settings, database, catalog, channels and the broker, wired once.

Web, CLI and worker each build one ``Runtime`` at start-up (never at import)
and call its use-case methods, which run one engine function in one
transaction and then hand the resulting batches to the relay.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from failover import anchors, datafiles, logs, throttle
from failover.channels import build_channels, twilio_webhooks
from failover.channels.base import Channel
from failover.channels.callbacks import InboundSMS, Keypress, StatusEvent
from failover.channels.sendgrid_email import SendGridEmail
from failover.channels.sendgrid_events import EventVerifier
from failover.clock import utcnow
from failover.db import Database, sqlite_path
from failover.domain import lastgood, runbooks
from failover.domain.preview import Preview, Prices
from failover.domain.runbooks import Catalog
from failover.domain.templates import Templates
from failover.engine import (
    activation,
    audit,
    dispatch,
    escalation,
    followup,
    incidents,
    optouts,
    refusals,
    relay,
    replies,
    tracking,
    trigger,
    updates,
)
from failover.engine.activation import Accepted
from failover.engine.snapshots import Snapshots
from failover.errors import BrokerUnavailable, ConfigError, ConfigProblems, Problem
from failover.models import AuditHead
from failover.secretbox import SecretBox
from failover.settings import Settings

if TYPE_CHECKING:
    from failover.bridge_line import BridgeLine
    from failover.watcher import Watcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigReport:
    """What the console, /readyz and the CLI say about the configuration files."""

    catalog: bool  # contacts are in force, so runbooks can be planned
    versions: dict[str, str]  # runbook id -> lastgood.CURRENT | LAST_GOOD
    broken: tuple[lastgood.Broken, ...]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.broken and not self.problems


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        datafiles.private_dir(settings.data_dir)  # embedded database, broker, beat schedule, keys: 0700
        if settings.embedded_broker:
            broker = sqlite_path(settings.celery_broker_url)
            if broker is not None:
                datafiles.private_sqlite(broker)
        self.audit_key = audit.AuditKey(settings.audit_key_bytes())
        self.database = Database(settings.sqlalchemy_url, audit_key=self.audit_key)
        self._catalog: tuple[tuple[Any, ...], runbooks.Loaded] | None = None
        self._catalog_lock = threading.Lock()
        self.publisher: relay.Publish = _no_broker

    # -- wiring -------------------------------------------------------------

    def catalog(self) -> Catalog:
        """Contacts, runbooks and templates in force; ConfigProblems only while no contacts are (nothing to plan)."""
        loaded = self.loaded()
        if loaded.catalog is None:
            raise ConfigProblems(loaded.problems)
        return loaded.catalog

    def loaded(self) -> runbooks.Loaded:
        """The files as they are, each broken one replaced by its last good version; reloaded when a file changes."""
        signature = _signature(self.settings.config_dir, self.settings.runbooks_dir)
        with self._catalog_lock:
            if self._catalog is None or self._catalog[0] != signature:
                loaded = runbooks.assemble(self.settings.config_dir, self.settings.runbooks_dir, self.snapshots.get)
                if loaded.catalog is not None:
                    self.bridge_line.install(loaded.catalog.templates)  # {channel: bridge} texts the real line
                self.snapshots.remember(loaded.good)
                logs.broken_config(loaded.broken)
                self._catalog = (signature, replace(loaded, good={}))  # the texts are stored; do not hold them
            return self._catalog[1]

    def config_report(self) -> ConfigReport:
        """Every broken configuration file and what is in force instead: for banners, /readyz and the CLI."""
        loaded = self.loaded()
        detection = self.watcher.loaded()
        broken = (*loaded.broken, *((detection.broken,) if detection.broken else ()))
        problems = sorted({*loaded.problems, *detection.problems}, key=lambda p: (p.file, p.line, p.message))
        return ConfigReport(loaded.catalog is not None, dict(loaded.versions), broken, problems)

    @cached_property
    def snapshots(self) -> Snapshots:
        return Snapshots(self.database)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        return build_channels(self.settings, self.database)

    @cached_property
    def totp_box(self) -> SecretBox:
        """Seals the console's TOTP secrets at rest (FAILOVER_TOTP_KEY, else derived from the secret key)."""
        return SecretBox.from_settings(self.settings)

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        """Threads for one-request-per-message channels. As many as the provider allows at once, so one
        worker alone can use the whole allowance; the guard keeps all workers together within it."""
        threads = self.settings.send_threads or max(8, self.settings.twilio_max_concurrent)
        return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")

    def warm(self) -> None:
        """Load and import what the first activation would need, before an outage needs it."""
        try:
            self.catalog()  # follow-ups and fallbacks read it; 50,000 contacts take seconds to parse
        except ConfigError as exc:
            log.error("configuration problem (the worker runs, activations will fail): %s", exc)
        for channel in self.channels.values():
            getattr(channel, "warm", lambda: None)()

    @cached_property
    def guard(self) -> throttle.Guard:
        settings = self.settings
        breaker = {"breaker_threshold": settings.breaker_threshold, "breaker_cooldown": settings.breaker_cooldown}
        limits = {
            "twilio": throttle.Limits(settings.twilio_max_concurrent, settings.twilio_rate, **breaker),
            "sendgrid": throttle.Limits(settings.sendgrid_max_concurrent, settings.sendgrid_rate, **breaker),
        }
        url = settings.shared_redis_url
        backend: throttle.Backend = throttle.RedisBackend(url) if url else throttle.LocalBackend()
        return throttle.Guard(backend, limits)

    @property
    def policy(self) -> dispatch.Policy:
        return dispatch.Policy(max_attempts=self.settings.max_attempts, sending_timeout=self.settings.sending_timeout)

    @property
    def prices(self) -> Prices:
        settings = self.settings
        return Prices(settings.sms_segment_price, settings.email_price, settings.price_currency)

    # -- use cases ----------------------------------------------------------

    @property
    def transports(self) -> dict[str, str]:
        """What carries each channel now (twilio, sendgrid, status, outbox): previews say it, in red for the outbox."""
        return {name: channel.transport for name, channel in self.channels.items()}

    def preview(self, **kwargs: Any) -> Preview:
        """The one preview of an activation request: console, API ``dry_run`` and CLI (nothing is written)."""
        catalog = self.catalog()
        with self.database.reading() as session:
            kwargs.setdefault("opted_out", optouts.opted_out_people(session, catalog.contacts))
        return trigger.preview(catalog, prices=self.prices, transports=self.transports, **kwargs)

    def approval_preview(self, *, activation_id: int) -> Preview:
        """What approving a waiting activation sends, for the approver to read first."""
        catalog = self.catalog()
        with self.database.reading() as session:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
            return trigger.preview_approval(
                session,
                catalog,
                activation_id=activation_id,
                prices=self.prices,
                opted_out=opted_out,
                transports=self.transports,
            )

    def confirm_preview(self, *, service: str, reason: str) -> trigger.OutageConfirm:
        """What confirming an outage of ``service`` by hand would send."""
        catalog = self.catalog()
        config = self.watcher.config()
        with self.database.reading() as session:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
            return trigger.preview_confirm(
                session,
                catalog,
                config,
                service=service,
                reason=reason,
                prices=self.prices,
                opted_out=opted_out,
                transports=self.transports,
            )

    def activate(self, **kwargs: Any) -> tuple[Accepted, bool]:
        """Accept an activation, then publish it. Returns (accepted, broker_took_it)."""
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = activation.activate(session, catalog, **kwargs)
        return accepted, self.relay(accepted.batch_ids)

    def trigger(self, **kwargs: Any) -> tuple[list[Accepted], bool]:
        """One incident, one or more runbooks, one transaction; then publish."""
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = trigger.activate(session, catalog, **kwargs)
        return accepted, self.relay([batch for item in accepted for batch in item.batch_ids])

    def add_runbooks_preview(self, **kwargs: Any) -> Preview:
        """What adding runbooks to an open incident would send (nothing is written)."""
        catalog = self.catalog()
        with self.database.reading() as session:
            return trigger.preview_for_incident(session, catalog, prices=self.prices, **kwargs)

    def update_templates(self) -> dict[str, str]:
        return updates.templates_for_updates(self._templates())

    def update_preview(self, **kwargs: Any) -> Preview:
        catalog = self.catalog_or_none()  # updates go to whoever the ledger says was told: no file needed
        with self.database.reading() as session:
            return updates.preview(
                session,
                templates=self._templates(),
                contacts=catalog.contacts if catalog else None,
                prices=self.prices,
                **kwargs,
            )

    def send_update(self, **kwargs: Any) -> tuple[Accepted, bool]:
        catalog = self.catalog_or_none()
        with self.database.transaction() as session:
            accepted = updates.send(
                session,
                templates=self._templates(),
                contacts=catalog.contacts if catalog else None,
                now=utcnow(),
                **kwargs,
            )
        return accepted, self.relay(accepted.batch_ids)

    def _templates(self) -> Templates:
        catalog = self.catalog_or_none()
        return catalog.templates if catalog else Templates(self.settings.runbooks_dir / "templates")

    def stand_down_preview(self, **kwargs: Any) -> trigger.StandDown:
        catalog = self.catalog_or_none()  # standing down never depends on the files loading
        with self.database.reading() as session:
            if catalog is not None:
                kwargs.setdefault("opted_out", optouts.opted_out_people(session, catalog.contacts))
            return trigger.preview_all_clear(session, catalog, prices=self.prices, transports=self.transports, **kwargs)

    def cancel(self, **kwargs: Any) -> None:
        with self.database.transaction() as session:
            activation.cancel(session, **kwargs)

    def approve(self, **kwargs: Any) -> tuple[Accepted, bool]:
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = activation.approve(session, catalog, **kwargs)
        return accepted, self.relay(accepted.batch_ids)

    def resolve(self, **kwargs: Any) -> tuple[list[Accepted], bool]:
        catalog = self.catalog_or_none()  # standing down never depends on the files loading
        with self.database.transaction() as session:
            accepted = incidents.resolve(session, catalog, **kwargs)
        batch_ids = [batch for item in accepted for batch in item.batch_ids]
        return accepted, self.relay(batch_ids)

    def relay(self, batch_ids: list[int]) -> bool:
        return relay.relay(self.database, self.publisher, batch_ids) if batch_ids else True

    def send_batch(self, batch_id: int) -> dispatch.BatchResult:
        return dispatch.send_batch(
            self.database, self.channels, batch_id, policy=self.policy, executor=self.executor, guard=self.guard
        )

    def sweep(self) -> relay.SweepReport:
        return relay.sweep(
            self.database,
            self.channels,
            self.publisher,
            sending_timeout=self.settings.sending_timeout,
            republish_after=self.settings.republish_after,
            guard=self.guard,
            policy=self.policy,
        )

    # -- outage detection (failover/watcher.py wires it, failover/engine/detection.py decides) ----

    @cached_property
    def watcher(self) -> Watcher:
        from failover.watcher import Watcher

        return Watcher(self)

    def poll_graph(self) -> dict[str, Any]:
        return self.watcher.poll_graph()

    def run_probe(self, name: str) -> dict[str, Any]:
        return self.watcher.run_probe(name)

    def evaluate_detection(self) -> dict[str, Any]:
        return self.watcher.evaluate()

    def receive_signals(self, **kwargs: Any) -> dict[str, Any]:
        return self.watcher.receive_signals(**kwargs)

    def confirm_outage(self, **kwargs: Any) -> dict[str, Any]:
        return self.watcher.confirm_outage(**kwargs)

    def watch_overview(self) -> dict[str, Any]:
        return self.watcher.overview()

    # -- delivery tracking, replies and escalation ----------------------------

    @cached_property
    def sendgrid_verifier(self) -> EventVerifier:
        key = self.settings.sendgrid_webhook_public_key
        return EventVerifier(key.get_secret_value() if key else None, max_age=self.settings.webhook_max_age)

    def verify_twilio(self, *, path: str, query: str, params: Any, signature: str | None, called_url: str) -> None:
        """Raise WebhookRejected unless Twilio signed this request for FAILOVER_PUBLIC_URL."""
        token = self.settings.twilio_auth_token
        twilio_webhooks.verify(
            auth_token=token.get_secret_value() if token else None,
            public_url=self.settings.public_url,
            path=path,
            query=query,
            params=params,
            signature=signature,
            called_url=called_url,
        )

    def receipts(self, events: list[StatusEvent]) -> tracking.Recorded:
        """Apply delivery receipts; a failure moves its person to the next channel at once."""
        catalog = self.catalog_or_none()  # receipts are recorded even while the config is broken
        with self.database.transaction() as session:
            recorded = tracking.record_receipts(session, catalog, events, now=utcnow())
        self.relay(recorded.batch_ids)
        return recorded

    def inbound_sms(self, message: InboundSMS) -> replies.Outcome:
        from failover.engine.phone_activation import Tools
        from failover.engine.talkback import Talkback

        catalog = self.catalog()
        phone = Tools(self.totp_box, self.prices, self.transports)
        talkback = Talkback(catalog, self.watcher.config_or_none, phone)
        with self.database.transaction() as session:
            outcome = replies.handle_sms(
                session, catalog, message, now=utcnow(), reply_limit=self.settings.reply_limit, talkback=talkback
            )
        self.relay(list(outcome.batch_ids))  # a staff report that confirmed an outage queued its runbooks
        return outcome

    def acknowledge_on_behalf(self, **kwargs: Any) -> None:
        with self.database.transaction() as session:
            replies.acknowledge_on_behalf(session, now=utcnow(), **kwargs)

    def steer_escalation(self, **kwargs: Any) -> str:
        with self.database.transaction() as session:
            return escalation.steer(session, now=utcnow(), **kwargs)

    def keypress(self, keypress: Keypress) -> bool:
        with self.database.transaction() as session:
            return replies.handle_keypress(session, keypress, now=utcnow())

    def webhook_rejected(
        self,
        *,
        endpoint: str,
        reason: str,
        status: int,
        remote: str | None,
        actor: str = "webhook",
        size: int | None = None,
    ) -> None:
        """Count a refused callback; the first of each window is audited (which endpoint, why, from where)."""
        refusal = refusals.Refusal(endpoint, status, reason, remote, actor=actor, size=size)
        with self.database.transaction() as session:
            refusals.refused(session, refusal, now=utcnow())

    # -- the audit log's anchors ------------------------------------------------------

    @cached_property
    def checkpoint_sinks(self) -> list[anchors.Sink]:
        sinks: list[anchors.Sink] = [anchors.LogSink()]
        sinks += [anchors.DirectorySink(directory) for directory in self.settings.checkpoint_dirs]
        email = self.channels.get("email")
        if self.settings.audit_checkpoint_email and isinstance(email, SendGridEmail):
            sinks.append(anchors.EmailSink(self.settings.audit_checkpoint_email, email.notify))
        return sinks

    def audit_checkpoint(self) -> dict[str, Any]:
        """Beat's checkpoint: close refusal windows, verify from the last checkpoint, anchor the result outside."""
        with self.database.transaction() as session:
            refusals.flush(session, now=utcnow())
        with self.database.reading() as session:
            verdict = audit.verify(session, incremental=True)
        if not verdict.ok:
            log.error("no audit checkpoint written: %s", verdict)
            return {"written": False, "verdict": str(verdict)}
        with self.database.transaction() as session:
            previous = audit.latest_checkpoint(session)
            checkpoint = audit.save_checkpoint(session, verdict, now=utcnow())
        if checkpoint is None:
            return {"written": False, "verdict": str(verdict)}
        first_of_day = previous is None or previous.at.date() != checkpoint.at.date()
        stored = []
        for sink in self.checkpoint_sinks:
            if getattr(sink, "daily", False) and not first_of_day:
                continue
            try:
                sink.write(checkpoint)
                stored.append(sink.name)
            except anchors.AnchorError as exc:
                log.error("audit checkpoint %s not stored in %s: %s", checkpoint.seq, sink.name, exc)
        return {"written": True, "seq": checkpoint.seq, "sinks": stored}

    def check_audit_key(self) -> None:
        """Refuse to start with a key other than the one the chain is signed with (ConfigError)."""
        try:
            with self.database.reading() as session:
                head = session.get(AuditHead, 1)
        except SQLAlchemyError as exc:  # not migrated yet, or the database is restarting: appends will tell
            log.warning("cannot check the audit key against the database now: %s", type(exc).__name__)
            return
        if head is not None and head.key_id is not None:
            audit.check_key(head, self.audit_key)

    def follow_up(self) -> followup.Report:
        """Beat's follow-up sweep: deferred receipts, fallbacks, due escalations."""
        report = followup.sweep(
            self.database,
            self.catalog_or_none(),
            now=utcnow(),
            escalation_limit=self.settings.escalation_limit,
            console_url=self.settings.public_url,
        )
        self.relay(report.batch_ids)
        self.bridge_line.sweep()  # bridges of new bridge steps; their dial: groups are called in
        return report

    @cached_property
    def bridge_line(self) -> BridgeLine:
        from failover.bridge_line import BridgeLine

        return BridgeLine(self)

    def catalog_or_none(self) -> Catalog | None:
        """The catalog, or None while no contacts are in force (receipts, pages and stand-down carry on)."""
        return self.loaded().catalog

    def close(self) -> None:
        if "watcher" in self.__dict__:
            self.watcher.close()
        if "bridge_line" in self.__dict__:
            self.bridge_line.close()
        if "executor" in self.__dict__:
            self.executor.shutdown(wait=True)
        for channel in self.__dict__.get("channels", {}).values():
            getattr(channel, "close", lambda: None)()
        if "guard" in self.__dict__:
            getattr(self.guard.backend, "close", lambda: None)()
        self.database.dispose()


def _no_broker(batch_id: int, countdown: float) -> None:
    raise BrokerUnavailable("no broker is configured in this process")


def _signature(*directories: Path) -> tuple[Any, ...]:
    entries = []
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)
