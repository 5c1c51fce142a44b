"""The states stored in the database, one StrEnum each (the values are what the columns hold)."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Ledger states. pending -> sending -> sent | failed; then callback states (see engine/dispatch.py)."""

    PENDING = "pending"
    SENDING = "sending"
    IN_DOUBT = "in_doubt"  # may have reached the provider: reconcile before any resend
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class ActivationState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class IncidentState(StrEnum):
    CONFIRMED = "confirmed"
    RESOLVED = "resolved"


class EscalationState(StrEnum):
    """An activation's escalation, as operators steer it (see engine.escalation.steer)."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
