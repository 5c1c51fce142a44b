"""The relay of the transactional outbox: from committed batches to broker tasks.

``relay`` publishes right after an activation commits; ``sweep`` (run by beat)
republishes whatever is still due, turns rows a dead worker left ``sending``
into in-doubt rows and reconciles those with the provider. Publishing twice
is harmless: a row is only sent from ``pending``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from failover.channels.base import Channel
from failover.clock import utcnow
from failover.db import Database
from failover.engine import dispatch
from failover.errors import BrokerUnavailable
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
                dispatch.mark_unpublished(session, refused)
        if published and not stamped:
            with database.transaction() as session:
                dispatch.mark_published(session, published, utcnow())
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
        dispatch.stale_sending(session, now, sending_timeout)
    found, missing = dispatch.reconcile(database, channels, now=now, guard=guard, policy=policy)
    with database.reading() as session:
        due = dispatch.batches_to_publish(session, now, republish_after)
    ok = relay(database, publish, due, stamped=False) if due else True
    return SweepReport(len(due), found, missing, ok)
