"""Sending: the channels, the provider guard, one batch at a time, the sweep and the follow-up.

Workers call ``send_batch`` per broker task; beat calls ``sweep`` (republish,
reconcile in-doubt rows) and ``follow_up`` (deferred receipts, fallbacks,
due escalations, approval pages).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import cached_property

from failover import throttle
from failover.channels import build_channels
from failover.channels.base import Channel
from failover.channels.callbacks import InboundSMS
from failover.channels.sms_providers import SMSProviders, providers_of
from failover.clock import utcnow
from failover.db import Database
from failover.engine import dispatch, followup, idle, reconcile, relay
from failover.errors import DeliveryError
from failover.sendloop import SendLoop
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, settings: Settings, database: Database, config: Configuration, relay: Relay) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        # Other services' additions to the channels (the status page's webhook channel), applied when built.
        self.extensions: list[Callable[[dict[str, Channel]], None]] = []
        self.extra_sweeps: list[Callable[[], object]] = []  # more work for beat's follow-up (services.talkback)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        channels = build_channels(self.settings, self.database)
        for extend in self.extensions:
            extend(channels)
        return channels

    @cached_property
    def send_loop(self) -> SendLoop:
        """The worker's one event loop for provider requests: as many in flight as the guard allows
        (so one worker alone can use the whole allowance), slots leased from the shared guard in blocks."""
        loop = SendLoop(self.guard, max_in_flight=self.settings.send_concurrency)
        for channel in self.channels.values():
            for provider in providers_of(channel):
                aclose = getattr(provider, "aclose", None)
                if aclose is not None:
                    loop.on_close(aclose)
        return loop

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
            # Reconciliation's lookups: their own breaker (reads may work while sends fail), a few at a time.
            reconcile.lookup_key("twilio"): throttle.Limits(
                4, 0.0, breaker_threshold=threshold, breaker_cooldown=cooldown
            ),
        }
        if settings.vonage_enabled:
            limits["vonage"] = throttle.Limits(
                settings.vonage_max_concurrent,
                settings.vonage_rate,
                breaker_threshold=threshold,
                breaker_cooldown=cooldown,
            )
        url = settings.shared_redis_url
        backend: throttle.Backend = throttle.RedisBackend(url) if url else throttle.LocalBackend()
        return throttle.Guard(backend, limits)

    @property
    def policy(self) -> dispatch.Policy:
        return dispatch.Policy(max_attempts=self.settings.max_attempts, sending_timeout=self.settings.sending_timeout)

    def answer_sms(self, message: InboundSMS, text: str) -> bool:
        """Answer an inbound SMS through the provider that received it, when it takes no reply in the webhook
        response (Vonage). Best effort, like a TwiML answer: never retried, never a reason to refuse the webhook."""
        channel = self.channels.get("sms")
        providers = channel.providers if isinstance(channel, SMSProviders) else (channel,)
        sender = next((p for p in providers if getattr(p, "transport", None) == message.provider), None)
        if sender is None or not hasattr(sender, "answer"):
            return False
        try:
            with self.guard.request(message.provider):
                sender.answer(message.sender, text)
        except DeliveryError as exc:
            log.warning("could not answer an inbound %s SMS: %s", message.provider, exc.detail)
            return False
        return True

    def transports(self) -> dict[str, str]:
        """What carries each channel now (twilio, sendgrid, status, outbox): previews say it, in red for the outbox."""
        return {name: channel.transport for name, channel in self.channels.items()}

    def warm(self) -> None:
        """Import and connect what the first send would need, before an outage needs it."""
        for channel in self.channels.values():
            getattr(channel, "warm", lambda: None)()

    def send_batch(self, batch_id: int) -> dispatch.BatchResult:
        return dispatch.send_batch(
            self.database, self.channels, batch_id, policy=self.policy, guard=self.guard, loop=self.send_loop
        )

    def sweep(self) -> relay.SweepReport:
        report = relay.sweep(
            self.database,
            self.channels,
            self.relay.publisher,
            sending_timeout=self.settings.sending_timeout,
            republish_after=self.settings.republish_after,
            guard=self.guard,
            policy=self.policy,
        )
        if report.republished:
            self.relay.pulse.mark()
        return report

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
        with self.database.reading() as session:
            if idle.open_work(session, utcnow(), dt.timedelta(seconds=2 * self.settings.idle_interval)):
                self.relay.pulse.mark()  # open work keeps beat at the 2-second pace (failover/pulse.py)
        for sweep in self.extra_sweeps:  # e.g. the bridge line opening bridges and dialling groups in
            sweep()
        return report

    def close(self) -> None:
        if "send_loop" in self.__dict__:
            self.send_loop.close()
        for channel in self.__dict__.get("channels", {}).values():
            getattr(channel, "close", lambda: None)()
        if "guard" in self.__dict__:
            getattr(self.guard.backend, "close", lambda: None)()
