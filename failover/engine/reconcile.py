"""Reconciliation: settle in-doubt rows (a send that may or may not have reached the provider).

The sweep turns rows a dead worker left ``sending`` into in-doubt rows
(``stale_sending``), then asks each provider that can tell (``Reconcilable``)
whether it took the message: found -> sent; not found -> pending again (or
failed once its attempts are used up). Nothing in doubt is sent again before
the provider was asked, except on channels that cannot be asked (SendGrid).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Row, bindparam, or_, select, update
from sqlalchemy.orm import Session

from failover.channels.base import Channel, OutgoingMessage, Receipt
from failover.db import Database
from failover.engine import audit, ledger
from failover.engine.dispatch import DEFAULT_POLICY, Policy
from failover.errors import DeliveryError
from failover.models import Delivery, DeliveryStatus
from failover.throttle import CircuitOpen, Guard

log = logging.getLogger(__name__)

IN_DOUBT = DeliveryStatus.IN_DOUBT
_T = Delivery.__table__


@runtime_checkable
class Reconcilable(Protocol):
    """A channel that can tell whether a message it may have sent was accepted."""

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None: ...


def stale_sending(session: Session, now: dt.datetime, timeout: float) -> None:
    """Rows left ``sending`` past the timeout (a worker died mid-send) become in doubt now."""
    cutoff = now - dt.timedelta(seconds=timeout)
    session.execute(
        update(_T)
        .where(_T.c.status == DeliveryStatus.SENDING, _T.c.claimed_at < cutoff)
        .values(status=IN_DOUBT, next_attempt_at=now, last_error="worker stopped while sending", updated_at=now)
    )


def reconcile(
    database: Database,
    channels: Mapping[str, Channel],
    *,
    now: dt.datetime,
    limit: int = 200,
    actor: str = "reconciler",
    guard: Guard | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[int, int]:
    """Settle due in-doubt rows by asking the provider. (A delivery receipt settles one too, on arrival.)

    found -> sent; not found -> pending again, or failed when its attempts are
    used up; provider down (circuit open) for longer than the sending timeout
    -> failed, so the fallback channel reaches the person instead of nobody.
    Channels without ``find`` cannot be asked: their in-doubt rows are sent
    again, which is the documented residual risk (SendGrid).
    Returns (found, not found).
    """
    with database.transaction() as session:
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.channel,
                Delivery.address,
                Delivery.body,
                Delivery.subject,
                Delivery.severity,
                Delivery.claimed_at,
                Delivery.activation_id,
                Delivery.attempts,
                Delivery.updated_at,
            )
            .where(
                Delivery.status == IN_DOUBT, or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)
            )
            .order_by(Delivery.id)
            .limit(limit)
        ).all()
    if not rows:
        return 0, 0
    verdicts: dict[str, list[dict[str, Any]]] = {"sent": [], "retry": [], "failed": [], "unconfirmed": []}
    for row in rows:
        try:
            provider_id = _ask_provider(database, channels.get(row.channel), row, now, guard)
        except CircuitOpen as exc:
            if now - row.updated_at >= dt.timedelta(seconds=policy.sending_timeout):
                # The provider is down and cannot say whether it took the message. Waiting for it
                # would leave the person unreached: give up on this channel so the fallback runs.
                verdicts["unconfirmed"].append({"_id": row.id, "_err": f"could not confirm: {exc.detail}"})
            continue
        except DeliveryError as exc:
            log.warning("cannot reconcile delivery %s yet: %s", row.id, exc.detail)
            continue
        if provider_id is not None:
            verdicts["sent"].append({"_id": row.id, "_pid": provider_id})
        else:
            verdicts["failed" if row.attempts >= policy.max_attempts else "retry"].append({"_id": row.id})
    updates = {
        "sent": {
            "status": DeliveryStatus.SENT,
            "provider_id": bindparam("_pid"),
            "sent_at": now,
            "error_code": None,
            "last_error": None,
        },
        "retry": {"status": DeliveryStatus.PENDING, "next_attempt_at": now},
        "failed": {"status": DeliveryStatus.FAILED},
        "unconfirmed": {"status": DeliveryStatus.FAILED, "error_code": "circuit_open", "last_error": bindparam("_err")},
    }
    details = {
        "sent": lambda p: {"found": True, "provider_id": p["_pid"]},
        "retry": lambda p: {"found": False, "then": "retry"},
        "failed": lambda p: {"found": False, "then": "failed"},
        "unconfirmed": lambda p: {"found": None, "then": "failed", "error": p["_err"]},
    }
    with database.transaction() as session:
        connection = session.connection()
        events = []
        for verdict, params in verdicts.items():
            if not params:
                continue
            connection.execute(
                update(_T)
                .where(_T.c.id == bindparam("_id"), _T.c.status == IN_DOUBT)
                .values(updated_at=now, **updates[verdict]),
                params,
            )
            events += [
                audit.Entry("delivery.reconciled", actor, "delivery", p["_id"], details=details[verdict](p))
                for p in params
            ]
        audit.record_many(session, events)
        ledger.complete_finished(session, {row.activation_id for row in rows}, actor)
    return len(verdicts["sent"]), len(verdicts["retry"]) + len(verdicts["failed"])


def _ask_provider(
    database: Database,
    channel: Channel | None,
    row: Row[Any],
    now: dt.datetime,
    guard: Guard | None,
) -> str | None:
    """The provider's id for an in-doubt row's message, or None if it never took it."""
    if not isinstance(channel, Reconcilable):
        return None
    message = OutgoingMessage(row.id, row.address, row.body, row.subject, severity=row.severity)
    since = (row.claimed_at or now) - dt.timedelta(minutes=2)
    if guard is None:
        receipt = channel.find(message, since)
    else:
        with guard.request(channel.transport):
            receipt = channel.find(message, since)
    if receipt is None or _owned_elsewhere(database, receipt.provider_id, row.id):
        return None  # the same text to the same number may be another row's message
    return receipt.provider_id


def _owned_elsewhere(database: Database, provider_id: str, delivery_id: int) -> bool:
    with database.reading() as session:
        other = session.scalar(
            select(Delivery.id).where(Delivery.provider_id == provider_id, Delivery.id != delivery_id).limit(1)
        )
    return other is not None
