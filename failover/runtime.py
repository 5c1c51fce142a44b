"""The composition root: settings, database, catalog, channels and the broker, wired once.

Web, CLI and worker each build one ``Runtime`` at start-up (never at import)
and call its use-case methods, which run one engine function in one
transaction and then hand the resulting batches to the relay.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from failover import throttle
from failover.channels import build_channels
from failover.channels.base import Channel
from failover.db import Database
from failover.domain import runbooks
from failover.domain.planning import Plan
from failover.domain.preview import Preview, Prices
from failover.domain.runbooks import Catalog
from failover.engine import activation, dispatch, incidents, relay, trigger
from failover.engine.activation import Accepted
from failover.errors import BrokerUnavailable
from failover.settings import Settings

if TYPE_CHECKING:
    from failover.watcher import Watcher

log = logging.getLogger(__name__)

SMS_THREADS = 32  # concurrent Twilio requests per worker process


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # embedded database, broker, beat schedule
        self.database = Database(settings.sqlalchemy_url)
        self._catalog: tuple[tuple[Any, ...], Catalog] | None = None
        self._catalog_lock = threading.Lock()
        self.publisher: relay.Publish = _no_broker

    # -- wiring -------------------------------------------------------------

    def catalog(self) -> Catalog:
        """Contacts, runbooks and templates; reloaded when a file changes."""
        signature = _signature(self.settings.config_dir, self.settings.runbooks_dir)
        with self._catalog_lock:
            if self._catalog is None or self._catalog[0] != signature:
                self._catalog = (signature, runbooks.load(self.settings.config_dir, self.settings.runbooks_dir))
            return self._catalog[1]

    @cached_property
    def channels(self) -> dict[str, Channel]:
        return build_channels(self.settings, self.database)

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=SMS_THREADS, thread_name_prefix="send")

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

    def preview(self, **kwargs: Any) -> Plan:
        return activation.preview(self.catalog(), **kwargs)

    def activate(self, **kwargs: Any) -> tuple[Accepted, bool]:
        """Accept an activation, then publish it. Returns (accepted, broker_took_it)."""
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = activation.activate(session, catalog, **kwargs)
        return accepted, self.relay(accepted.batch_ids)

    def trigger_preview(self, **kwargs: Any) -> Preview:
        """The console's preview of one or more runbooks (nothing is written)."""
        return trigger.preview(self.catalog(), prices=self.prices, **kwargs)

    def trigger(self, **kwargs: Any) -> tuple[list[Accepted], bool]:
        """One incident, one or more runbooks, one transaction; then publish."""
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = trigger.activate(session, catalog, **kwargs)
        return accepted, self.relay([batch for item in accepted for batch in item.batch_ids])

    def stand_down_preview(self, **kwargs: Any) -> trigger.StandDown:
        catalog = self.catalog()
        with self.database.reading() as session:
            return trigger.preview_all_clear(session, catalog, prices=self.prices, **kwargs)

    def cancel(self, **kwargs: Any) -> None:
        with self.database.transaction() as session:
            activation.cancel(session, **kwargs)

    def approve(self, **kwargs: Any) -> tuple[Accepted, bool]:
        catalog = self.catalog()
        with self.database.transaction() as session:
            accepted = activation.approve(session, catalog, **kwargs)
        return accepted, self.relay(accepted.batch_ids)

    def resolve(self, **kwargs: Any) -> tuple[list[Accepted], bool]:
        catalog = self.catalog()
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

    def close(self) -> None:
        if "watcher" in self.__dict__:
            self.watcher.close()
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
