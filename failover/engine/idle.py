"""Is anything open that the sweep or the follow-up must look after? (failover/pulse.py keeps the answer.)"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from failover.models import Activation, ActivationState, Delivery, DeliveryStatus, EscalationTimer, ProviderEvent

OPEN_ROWS = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.IN_DOUBT)


def open_work(session: Session, now: dt.datetime, horizon: dt.timedelta) -> bool:
    """Rows to send or in flight, receipts to apply, failures to fall back, escalations due within
    ``horizon``, activations awaiting approval (their approvers are paged): each an indexed EXISTS."""
    checks = (
        exists().where(Delivery.status.in_(OPEN_ROWS)),
        exists().where(ProviderEvent.applied_at.is_(None), ProviderEvent.kind == "status"),
        exists().where(and_(Delivery.status == DeliveryStatus.FAILED, Delivery.followed_up_at.is_(None))),
        exists().where(EscalationTimer.fired_at.is_(None), EscalationTimer.due_at <= now + horizon),
        exists().where(Activation.state == ActivationState.PENDING_APPROVAL),
    )
    return bool(session.scalar(select(or_(*checks))))
