"""Sending: the channels, the provider guard, one batch at a time, the sweep and the follow-up.

Workers call ``send_batch`` per broker task; beat calls ``sweep`` (republish,
reconcile in-doubt rows) and ``follow_up`` (deferred receipts, fallbacks,
due escalations, approval pages).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

from failover import throttle
from failover.channels import build_channels
from failover.channels.base import Channel
from failover.clock import utcnow
from failover.db import Database
from failover.engine import dispatch, followup, relay
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings


class Delivery:
    def __init__(self, settings: Settings, database: Database, config: Configuration, relay: Relay) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        self.extra_sweeps: list[Callable[[], object]] = []  # more work for beat's follow-up (services.talkback)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        return build_channels(self.settings, self.database)

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        """Threads for one-request-per-message channels. As many as the provider allows at once, so one
        worker alone can use the whole allowance; the guard keeps all workers together within it."""
        threads = self.settings.send_threads or max(8, self.settings.twilio_max_concurrent)
        return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")

    @cached_property
    def guard(self) -> throttle.Guard:
        settings = self.settings
        threshold, cooldown = settings.breaker_threshold, settings.breaker_cooldown
        limits = {
            "twilio": throttle.Limits(
                settings.twilio_max_concurrent,
                settings.twilio_rate,
                breaker_threshold=threshold,
                breaker_cooldown=cooldown,
            ),
            "sendgrid": throttle.Limits(
                settings.sendgrid_max_concurrent,
                settings.sendgrid_rate,
                breaker_threshold=threshold,
                breaker_cooldown=cooldown,
            ),
        }
        url = settings.shared_redis_url
        backend: throttle.Backend = throttle.RedisBackend(url) if url else throttle.LocalBackend()
        return throttle.Guard(backend, limits)

    @property
    def policy(self) -> dispatch.Policy:
        return dispatch.Policy(max_attempts=self.settings.max_attempts, sending_timeout=self.settings.sending_timeout)

    def transports(self) -> dict[str, str]:
        """What carries each channel now (twilio, sendgrid, status, outbox): previews say it, in red for the outbox."""
        return {name: channel.transport for name, channel in self.channels.items()}

    def warm(self) -> None:
        """Import and connect what the first send would need, before an outage needs it."""
        for channel in self.channels.values():
            getattr(channel, "warm", lambda: None)()

    def send_batch(self, batch_id: int) -> dispatch.BatchResult:
        return dispatch.send_batch(
            self.database, self.channels, batch_id, policy=self.policy, executor=self.executor, guard=self.guard
        )

    def sweep(self) -> relay.SweepReport:
        return relay.sweep(
            self.database,
            self.channels,
            self.relay.publisher,
            sending_timeout=self.settings.sending_timeout,
            republish_after=self.settings.republish_after,
            guard=self.guard,
            policy=self.policy,
        )

    def follow_up(self) -> followup.Report:
        """Beat's follow-up sweep: deferred receipts, fallbacks, due escalations."""
        report = followup.sweep(
            self.database,
            self.config.catalog_or_none(),
            now=utcnow(),
            escalation_limit=self.settings.escalation_limit,
            console_url=self.settings.public_url,
        )
        self.relay.publish(report.batch_ids)
        for sweep in self.extra_sweeps:  # e.g. the bridge line opening bridges and dialling groups in
            sweep()
        return report

    def close(self) -> None:
        if "executor" in self.__dict__:
            self.executor.shutdown(wait=True)
        for channel in self.__dict__.get("channels", {}).values():
            getattr(channel, "close", lambda: None)()
        if "guard" in self.__dict__:
            getattr(self.guard.backend, "close", lambda: None)()
