"""The SMS channel when more than one SMS provider is configured (``FAILOVER_SMS_PROVIDERS``).

It holds the providers in order of preference. The dispatcher offers each
message to them in turn, each behind its own guard (limits, concurrency,
breaker), and :mod:`failover.domain.providers` decides which errors move a
message on; ``send`` does the same without a guard, for callers outside the
dispatcher. Reconciliation asks the provider recorded on the row (``provider``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from failover.channels.base import Channel, OutgoingMessage, Receipt
from failover.domain import providers as policy
from failover.errors import DeliveryError, RetryableDeliveryError


class SMSProviders:
    name = "sms"
    max_batch = 1

    def __init__(self, providers: Sequence[Channel]) -> None:
        if not providers:
            raise ValueError("at least one SMS provider")
        self.providers = tuple(providers)
        self.transport = ",".join(p.transport for p in self.providers)  # shown in previews, never stored

    def provider(self, transport: str | None) -> Channel | None:
        return next((p for p in self.providers if p.transport == transport), None)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        error: DeliveryError | None = None
        for provider in self.providers:
            try:
                return provider.send(messages)
            except DeliveryError as exc:
                maybe_sent = isinstance(exc, RetryableDeliveryError) and exc.maybe_sent
                if not policy.fails_over(provider.transport, exc.code, maybe_sent=maybe_sent):
                    raise
                error = exc
        assert error is not None
        raise error

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        """Without the row's provider, ask the first one (the dispatcher asks the recorded one instead)."""
        find = getattr(self.providers[0], "find", None)
        return find(message, since) if find else None

    def warm(self) -> None:
        for provider in self.providers:
            getattr(provider, "warm", lambda: None)()

    def close(self) -> None:
        for provider in self.providers:
            getattr(provider, "close", lambda: None)()


def providers_of(channel: Channel) -> tuple[Channel, ...]:
    """The providers a channel sends through, in order (one, for every channel but a multi-provider SMS)."""
    return channel.providers if isinstance(channel, SMSProviders) else (channel,)


def provider_candidates(channel: Channel | None, transport: str | None) -> tuple[Channel, ...]:
    """The providers that may hold a row's message: the recorded one, else (a worker died mid-send) all of them."""
    if channel is None:
        return ()
    if isinstance(channel, SMSProviders):
        recorded = channel.provider(transport)
        return (recorded,) if recorded is not None else channel.providers
    return (channel,)
