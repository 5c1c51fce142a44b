"""After sending: provider receipts, inbound replies and keypresses, acknowledgements, escalation steering.

Callbacks are verified here (Twilio's signature, SendGrid's signed events)
before any of them reaches the ledger; a failed receipt moves its person to
the next channel at once (the relay publishes that batch).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from failover.channels import twilio_webhooks, vonage_webhooks
from failover.channels.callbacks import InboundSMS, Keypress, StatusEvent
from failover.channels.sendgrid_events import EventVerifier
from failover.clock import utcnow
from failover.db import Database
from failover.domain.runbooks import Catalog
from failover.engine import escalation, replies, tracking
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings


class Tracking:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        config: Configuration,
        relay: Relay,
        talkback: Callable[[Catalog], replies.Talkback] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        self.talkback = talkback  # more keywords: staff reports, RUN by phone, poll answers (services.talkback)

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

    @cached_property
    def vonage_verifier(self) -> vonage_webhooks.Verifier:
        secret = self.settings.vonage_signature_secret
        return vonage_webhooks.Verifier(
            api_key=self.settings.vonage_api_key,
            signature_secret=secret.get_secret_value() if secret else None,
            signature_method=self.settings.vonage_signature_method,
            max_age=self.settings.webhook_max_age,
        )

    def receipts(self, events: list[StatusEvent]) -> tracking.Recorded:
        """Apply delivery receipts; a failure moves its person to the next channel at once."""
        catalog = self.config.catalog_or_none()  # receipts are recorded even while the config is broken
        with self.database.transaction() as session:
            recorded = tracking.record_receipts(session, catalog, events, now=utcnow())
        self.relay.publish(recorded.batch_ids)
        return recorded

    def inbound_sms(self, message: InboundSMS) -> replies.Outcome:
        catalog = self.config.catalog()
        talkback = self.talkback(catalog) if self.talkback is not None else None
        with self.database.transaction() as session:
            outcome = replies.handle_sms(
                session, catalog, message, now=utcnow(), reply_limit=self.settings.reply_limit, talkback=talkback
            )
        self.relay.publish(outcome.batch_ids)  # a staff report that confirmed an outage queued its runbooks
        return outcome

    def keypress(self, keypress: Keypress) -> bool:
        with self.database.transaction() as session:
            return replies.handle_keypress(session, keypress, now=utcnow())

    def acknowledge_on_behalf(self, *, activation_id: int, person_id: str, actor: str, note: str = "") -> None:
        with self.database.transaction() as session:
            replies.acknowledge_on_behalf(
                session, activation_id=activation_id, person_id=person_id, actor=actor, note=note, now=utcnow()
            )

    def steer_escalation(self, *, activation_id: int, action: str, actor: str, note: str = "") -> str:
        with self.database.transaction() as session:
            return escalation.steer(
                session, activation_id=activation_id, action=action, actor=actor, note=note, now=utcnow()
            )
