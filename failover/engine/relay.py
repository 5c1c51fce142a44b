"""The relay of the transactional outbox: from committed batches to broker tasks.

``relay`` publishes right after an activation commits; ``sweep`` (run by beat)
republishes whatever is still due, turns rows a dead worker left ``sending``
into in-doubt rows and reconciles those with the provider. Publishing twice
is harmless: a row is only sent from ``pending``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from failover.channels.base import Channel
from failover.clock import utcnow
from failover.db import Database
from failover.engine import dispatch, reconcile
from failover.errors import BrokerUnavailable
from failover.models import Delivery, DeliveryStatus, DispatchBatch
from failover.throttle import Guard

log = logging.getLogger(__name__)

# publish(batch_id, countdown_seconds); raises BrokerUnavailable when the broker is down.
Publish = Callable[[int, float], None]


def relay(database: Database, publish: Publish, batch_ids: Sequence[int], *, stamped: bool = True) -> bool:
    """Publish each batch. False if the broker refused any; those are left for the sweep.

    Batches arrive stamped as published (in the activation's own transaction,
    so that a long publish loop never looks like lost tasks); the stamp is
    cleared for whatever the broker refused. ``stamped=False`` stamps after.
    """
    published: list[int] = []
    try:
        for batch_id in batch_ids:
            publish(batch_id, 0.0)
            published.append(batch_id)
    except BrokerUnavailable as exc:
        log.warning(
            "broker unreachable, %d batch(es) stay queued for the sweep: %s", len(batch_ids) - len(published), exc
        )
    finally:
        refused = [batch_id for batch_id in batch_ids if batch_id not in set(published)]
        if refused and stamped:
            with database.transaction() as session:
                mark_unpublished(session, refused)
        if published and not stamped:
            with database.transaction() as session:
                mark_published(session, published, utcnow())
    return not refused


@dataclass(frozen=True)
class SweepReport:
    republished: int
    reconciled_found: int
    reconciled_missing: int
    broker_ok: bool


def sweep(
    database: Database,
    channels: Mapping[str, Channel],
    publish: Publish,
    *,
    sending_timeout: float,
    republish_after: float = 120.0,
    guard: Guard | None = None,
    policy: dispatch.Policy = dispatch.DEFAULT_POLICY,
) -> SweepReport:
    now = utcnow()
    with database.transaction() as session:
        reconcile.stale_sending(session, now, sending_timeout)
    found, missing = reconcile.reconcile(database, channels, now=now, guard=guard, policy=policy)
    with database.reading() as session:
        due = batches_to_publish(session, now, republish_after)
    ok = relay(database, publish, due, stamped=False) if due else True
    return SweepReport(len(due), found, missing, ok)


# -- publish bookkeeping: which batches the broker was told about, and which it must be told again --


def batches_to_publish(session: Session, now: dt.datetime, republish_after: float, limit: int = 500) -> list[int]:
    """Batches holding due pending rows that no published task will pick up.

    That is: never published (the broker refused); published before a retry
    was scheduled for one of its rows (or before reconciliation queued a row
    again); or neither published nor started for ``republish_after`` seconds,
    so the task must have been lost (a broker restarted empty, a dead worker's
    reserved tasks). A long queue in a big broadcast is not "lost": that is why
    the last start counts, and why the window is minutes, not seconds.
    """
    stale = now - dt.timedelta(seconds=republish_after)
    last_seen = func.coalesce(DispatchBatch.started_at, DispatchBatch.published_at)
    query = (
        select(DispatchBatch.id)
        .join(Delivery, Delivery.batch_id == DispatchBatch.id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
            or_(
                DispatchBatch.published_at.is_(None),
                DispatchBatch.published_at < Delivery.next_attempt_at,
                and_(
                    last_seen < stale,
                    or_(DispatchBatch.started_at.is_(None), DispatchBatch.started_at >= DispatchBatch.published_at),
                ),
            ),
        )
        .distinct()
        .order_by(DispatchBatch.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_unpublished(session: Session, batch_ids: Sequence[int]) -> None:
    """The broker refused these: the sweep must publish them."""
    if batch_ids:
        session.execute(
            update(DispatchBatch)
            .where(DispatchBatch.id.in_(batch_ids))
            .values(published_at=None)
            .execution_options(synchronize_session=False)
        )


def mark_published(session: Session, batch_ids: Sequence[int], now: dt.datetime) -> None:
    if batch_ids:
        session.execute(
            update(DispatchBatch)
            .where(DispatchBatch.id.in_(batch_ids))
            .values(published_at=now, publish_count=DispatchBatch.publish_count + 1)
            .execution_options(synchronize_session=False)
        )
