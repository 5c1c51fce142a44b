"""What provider callbacks mean, free of their wire formats.

The provider modules (``twilio_webhooks``, ``sendgrid_events``) turn a verified
request into these values; the engine only ever sees these.
"""

from __future__ import annotations

from dataclasses import dataclass

from failover.domain.receipts import Progress


@dataclass(frozen=True)
class StatusEvent:
    """A delivery receipt for one ledger row."""

    provider: str  # twilio | vonage | sendgrid
    event_key: str  # unique per provider: repeats of the same report share it
    delivery_id: int | None
    provider_id: str | None  # MessageSid, CallSid, or SendGrid's X-Message-Id
    status: str  # the provider's word: delivered, undelivered, bounce, no-answer
    progress: Progress
    error_code: str | None = None
    detail: str = ""  # short, scrubbed of contact data


@dataclass(frozen=True)
class InboundSMS:
    """An SMS someone sent to our number. ``body`` is never logged or audited."""

    message_sid: str  # the provider's id for it (Twilio MessageSid, Vonage messageId)
    sender: str
    body: str
    provider: str = "twilio"  # twilio | vonage: one reply handling, whichever number received it


@dataclass(frozen=True)
class Keypress:
    """Digits a callee pressed during a voice alert (empty when they pressed nothing)."""

    delivery_id: int
    call_sid: str
    digits: str
