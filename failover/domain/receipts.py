"""Delivery receipts: how far a message got, and what a late or repeated receipt may change.

Providers report progress in their own words (Twilio ``queued`` / ``sent`` /
``delivered`` / ``undelivered``, SendGrid ``processed`` / ``bounce``, a call's
``no-answer``); the channels translate those words into a :class:`Progress`.
Callbacks arrive out of order and more than once, so progress only ever moves
up: ``delivered`` is never downgraded to ``sent``, and a repeat changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# Ledger states (failover.models.DeliveryStatus), repeated here because the domain imports no models.
PENDING, SENDING, IN_DOUBT = "pending", "sending", "in_doubt"
SENT, DELIVERED, FAILED = "sent", "delivered", "failed"
SKIPPED, CANCELLED = "skipped", "cancelled"

# Transports that report receipts; for the others (outbox, status page) "sent" is as far as anyone can know.
RECEIPT_TRANSPORTS = frozenset({"twilio", "sendgrid"})


class Progress(IntEnum):
    """How far a message got, in the order it can only move. A final failure ranks below delivery."""

    NONE = 0
    ACCEPTED = 1  # queued, accepted, processed, initiated
    SENDING = 2  # sending, ringing
    SENT = 3  # handed to the carrier / receiving server; deferred mail is still on its way
    FAILED = 4  # undelivered, failed, bounce, dropped, busy, no-answer
    DELIVERED = 5  # delivered to the handset or mailbox, or the call was answered

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, label: str | None) -> Progress:
        """The progress stored as ``label`` on a row (``None`` or unknown: nothing yet)."""
        if not label:
            return cls.NONE
        try:
            return cls[label.upper()]
        except KeyError:
            return cls.NONE


@dataclass(frozen=True)
class Decision:
    """What one receipt does to one ledger row."""

    record: bool  # store the receipt's progress on the row
    ledger: str | None = None  # the row's new ledger status, or None to leave it
    defer: bool = False  # the dispatcher still holds the row: apply the receipt once it lets go


IGNORE = Decision(record=False)


def decide(ledger: str, current: Progress, receipt: Progress) -> Decision:
    """Apply a receipt of progress ``receipt`` to a row in ledger state ``ledger`` that reached ``current``.

    * Never backwards: a receipt no further than what the row already has is a
      repeat or arrived out of order, and changes nothing.
    * A row still ``sending`` belongs to the dispatcher, which is about to record
      the provider's answer; the receipt waits for it (``defer``).
    * A receipt for a ``pending`` or ``in_doubt`` row proves the provider has the
      message, so the row must never be sent again: it becomes at least ``sent``.
    * ``delivered`` and ``failed`` receipts settle the row; a late ``delivered``
      beats an earlier failure (it is the better evidence), never the reverse.
    """
    if receipt <= current or receipt == Progress.NONE:
        return IGNORE
    if ledger == SENDING:
        return Decision(record=False, defer=True)
    if ledger in (SKIPPED, CANCELLED):
        return Decision(record=True)
    if receipt == Progress.DELIVERED:
        return Decision(record=True, ledger=DELIVERED)
    if receipt == Progress.FAILED:
        return Decision(record=True, ledger=None if ledger == DELIVERED else FAILED)
    if ledger in (PENDING, IN_DOUBT):
        return Decision(record=True, ledger=SENT)
    return Decision(record=True)


def reached(status: str, transport: str | None) -> bool:
    """Whether a row is known to have reached its person: a delivery receipt, nothing less.

    ``sent`` only means a provider (or the outbox, which sends nothing) took the
    message; an answer proves reach too, but that is the caller's to add.
    """
    return status == DELIVERED
