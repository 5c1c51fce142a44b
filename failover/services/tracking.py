"""After sending: provider receipts, inbound replies and keypresses, acknowledgements, escalation steering.

Callbacks are verified here (Twilio's signature, SendGrid's signed events)
before any of them reaches the ledger; a failed receipt moves its person to
the next channel at once (the relay publishes that batch).

Receipts, with the shared Redis (production): ``accept`` queues the verified
receipts (failover/receiptqueue.py) and returns at once; ``drain`` (the
``apply_receipts`` task, woken by the first queued receipt, and beat's
follow-up for leftovers) applies them in groups of up to ``GROUP_SIZE``, one
transaction per group, and acknowledges a group only after its commit. When
Redis does not take a receipt, and in the embedded mode (no Redis), ``accept``
applies it in the request, one transaction per callback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from failover.channels import twilio_webhooks, vonage_webhooks
from failover.channels.callbacks import InboundSMS, Keypress, StatusEvent
from failover.channels.sendgrid_events import EventVerifier
from failover.clock import utcnow
from failover.db import Database
from failover.domain.receipts import Progress
from failover.domain.runbooks import Catalog
from failover.engine import escalation, replies, tracking
from failover.receiptqueue import Entry, QueueUnavailable, ReceiptQueue
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings

log = logging.getLogger(__name__)

GROUP_SIZE = 300  # receipts per transaction: big enough to share the audit lock, small enough to commit quickly
GATHER_S = 0.1  # after a short group, wait this long for more: fewer, bigger transactions, receipts 0.1 s later
DRAIN_BUDGET_S = 20.0  # one drain task's share of a worker; a longer backlog continues in a fresh task


@dataclass
class Drained:
    applied: int = 0
    entries: int = 0
    groups: int = 0
    left: bool = False  # stopped at the budget with entries still queued (another drain was woken)


def _no_waker() -> None:
    """No broker in this process: the follow-up sweep drains the queue."""


class Tracking:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        config: Configuration,
        relay: Relay,
        talkback: Callable[[Catalog], replies.Talkback] | None = None,
        queue: ReceiptQueue | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        self.talkback = talkback  # more keywords: staff reports, RUN by phone, poll answers (services.talkback)
        self.queue = queue  # None: receipts are applied in the request (embedded mode)
        self.waker: Callable[[], None] = _no_waker  # create_celery sets it: sends the apply_receipts task

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

    def accept(self, events: list[StatusEvent]) -> tracking.Recorded | None:
        """Verified receipts from one request: queued (None), or applied now when there is no queue to take them."""
        if not events:
            return tracking.Recorded()
        if self.queue is not None:
            try:
                wake = self.queue.push(encode(events))
            except QueueUnavailable as exc:
                log.warning("receipts queue unavailable, applying in the request: %s", exc)
            else:
                if wake:  # the first receipt of a burst: wake a drain, and beat's follow-up (failover/pulse.py)
                    self.relay.pulse.mark()
                    self._wake()
                return None
        return self.receipts(events)

    def _wake(self) -> None:
        try:
            self.waker()
        except Exception as exc:  # the broker is down: the follow-up sweep drains the queue
            log.warning("cannot wake a receipts drain (the follow-up sweep will): %s", type(exc).__name__)

    def receipts(self, events: list[StatusEvent]) -> tracking.Recorded:
        """Apply delivery receipts; a failure moves its person to the next channel at once."""
        # Receipts are recorded even while the config is broken; the catalog is looked up only for a fallback.
        with self.database.transaction() as session:
            recorded = tracking.record_receipts(session, self.config.catalog_or_none, events, now=utcnow())
        self.relay.publish(recorded.batch_ids)
        return recorded

    def drain(self, *, budget_s: float = DRAIN_BUDGET_S, group_size: int = GROUP_SIZE) -> Drained:
        """Apply queued receipts a group at a time until the queue is empty or the budget is spent.

        A group is acknowledged only after its transaction committed: if this
        process dies or the database refuses, its entries stay pending and are
        applied again later (``claim_after_s``), which changes nothing twice.
        """
        drained = Drained()
        if self.queue is None:
            return drained
        deadline = time.monotonic() + budget_s
        claim = True  # a dead worker's entries first, once per drain (and whenever the stream runs dry)
        try:
            self.queue.hold()
            while True:
                entries = self.queue.take(group_size, claim=claim)
                claim = False
                if not entries:
                    self.queue.release()  # then look once more: a callback may have come in between
                    entries = self.queue.take(group_size)
                    if not entries:
                        return drained
                drained.applied += self._apply_group(self.queue, entries)
                drained.entries += len(entries)
                drained.groups += 1
                if len(entries) < group_size:
                    time.sleep(GATHER_S)  # the queue is keeping up: let more arrive rather than commit a few at a time
                if time.monotonic() > deadline:
                    drained.left = True
                    self.queue.release()
                    self._wake()
                    return drained
        except QueueUnavailable as exc:
            log.warning("receipts queue unavailable, draining later: %s", exc)
            return drained

    def _apply_group(self, queue: ReceiptQueue, entries: list[Entry]) -> int:
        events: list[StatusEvent] = []
        for entry in entries:
            try:
                events += decode(entry.payload)
            except (ValueError, KeyError, TypeError) as exc:  # never written by us: drop it, do not block the queue
                log.error("dropping unreadable receipts queue entry %s: %s", entry.id, type(exc).__name__)
        recorded = self.receipts(events)
        queue.ack([entry.id for entry in entries], hold=True)
        return recorded.applied

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


def encode(events: list[StatusEvent]) -> bytes:
    """Receipts as a queue entry: their ids and statuses (no contact data), as JSON."""
    return json.dumps(
        [
            [e.provider, e.event_key, e.delivery_id, e.provider_id, e.status, e.progress.label, e.error_code, e.detail]
            for e in events
        ],
        separators=(",", ":"),
    ).encode()


def decode(payload: bytes) -> list[StatusEvent]:
    return [
        StatusEvent(
            provider=str(provider),
            event_key=str(key),
            delivery_id=None if delivery_id is None else int(delivery_id),
            provider_id=None if provider_id is None else str(provider_id),
            status=str(status),
            progress=Progress[str(progress).upper()],
            error_code=None if code is None else str(code),
            detail=str(detail),
        )
        for provider, key, delivery_id, provider_id, status, progress, code, detail in json.loads(payload)
    ]
