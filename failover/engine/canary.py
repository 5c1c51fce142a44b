"""Canaries: a scheduled end-to-end proof that each provider still delivers to a real phone and mailbox.

Beat starts a round every FAILOVER_CANARY_INTERVAL seconds (default daily):
"failover canary, reply OK" to each designated number (FAILOVER_CANARY_SMS)
and personal address (FAILOVER_CANARY_EMAIL) through the channel configured
for it. Canaries stay out of the delivery ledger: they are no activation, so
their callbacks carry delivery id 0, and a canary is matched to its receipt
by the provider's message id among the stored provider events (the receipt
itself is audited as ``receipt.unknown_delivery``, like any stray callback).

A canary whose receipt reports delivery within FAILOVER_CANARY_TIMEOUT is
``ok``; one that fails or hears nothing is ``failed``, and an alert goes to
the designated targets through the *other* channels (never the one that
failed, never Microsoft): a broken SMS provider is reported by e-mail and the
other way round. Rows for outbox channels are not written: with no provider
there is nothing to prove.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.channels.base import Channel, OutgoingMessage
from failover.db import Database
from failover.domain.receipts import Progress
from failover.engine import audit
from failover.errors import DeliveryError
from failover.models import CanaryRun, ProviderEvent
from failover.privacy import mask_address, scrub

log = logging.getLogger(__name__)

TEXT = "failover canary, reply OK"
SUBJECT = "failover canary"
CANARY_DELIVERY_ID = 0  # no ledger row: receipts are matched on the provider's message id
CHANNELS = ("sms", "email")
PROVIDER_TRANSPORTS = frozenset({"twilio", "sendgrid", "vonage"})


@dataclass
class Round:
    started: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    alerts: int = 0


def start(
    database: Database,
    channels: Mapping[str, Channel],
    targets: Mapping[str, list[str]],
    *,
    now: dt.datetime,
    timeout: dt.timedelta,
) -> Round:
    """Send one canary per designated target through its configured provider."""
    result = Round()
    for name in CHANNELS:
        channel = channels.get(name)
        if channel is None or channel.transport not in PROVIDER_TRANSPORTS:
            continue
        for target in targets.get(name, []):
            message = OutgoingMessage(CANARY_DELIVERY_ID, target, TEXT, subject=SUBJECT if name == "email" else None)
            run = CanaryRun(
                channel=name,
                transport=channel.transport,
                target=mask_address(target),
                started_at=now,
                deadline_at=now + timeout,
                detail="",
                alerted=False,
            )
            try:
                receipts = channel.send([message])
                run.provider_id = receipts[0].provider_id if receipts else None
                run.detail = "sent, waiting for the delivery receipt"
            except DeliveryError as exc:
                run.outcome, run.finished_at = "failed", now
                run.detail = scrub(f"the provider refused it: {exc}", 500)
            with database.transaction() as session:
                session.add(run)
                session.flush()
                audit.record(
                    session,
                    action="canary.sent" if run.outcome is None else "canary.failed",
                    actor="canary",
                    target_type="canary",
                    target_id=run.id,
                    details={"channel": name, "transport": run.transport, "detail": run.detail},
                )
                result.started.append(run.id)
                if run.outcome == "failed":
                    result.failed.append(run.id)
    result.alerts += alert(database, channels, targets, now=now)
    return result


def check(
    database: Database, channels: Mapping[str, Channel], targets: Mapping[str, list[str]], *, now: dt.datetime
) -> Round:
    """Settle waiting canaries from their receipts or their deadline; alert about new failures."""
    result = Round()
    with database.transaction() as session:
        waiting = session.scalars(select(CanaryRun).where(CanaryRun.outcome.is_(None)).with_for_update()).all()
        for run in waiting:
            if _settle(session, run, now) == "failed":
                result.failed.append(run.id)
    result.alerts = alert(database, channels, targets, now=now)
    return result


def _settle(session: Session, run: CanaryRun, now: dt.datetime) -> str | None:
    events = (
        session.scalars(
            select(ProviderEvent).where(ProviderEvent.provider_id == run.provider_id, ProviderEvent.kind == "status")
        ).all()
        if run.provider_id
        else []
    )
    best = max((Progress.of(event.progress) for event in events), default=Progress.NONE)
    if best == Progress.DELIVERED:
        run.outcome, run.finished_at = "ok", now
        run.receipt_at = min(e.received_at for e in events if Progress.of(e.progress) == Progress.DELIVERED)
        took = (run.receipt_at - run.started_at).total_seconds()
        run.detail = f"delivered after {took:.0f} s"
    elif best == Progress.FAILED:
        failure = next(e for e in events if Progress.of(e.progress) == Progress.FAILED)
        run.outcome, run.finished_at = "failed", now
        code = f" ({failure.error_code})" if failure.error_code else ""
        run.detail = f"the provider reports {failure.status}{code}"
    elif now >= run.deadline_at:
        minutes = (run.deadline_at - run.started_at).total_seconds() / 60
        run.outcome, run.finished_at = "failed", now
        run.detail = f"no delivery receipt within {minutes:.0f} min (last heard: {best.label})"
    else:
        return None
    audit.record(
        session,
        action=f"canary.{run.outcome}",
        actor="canary",
        target_type="canary",
        target_id=run.id,
        details={"channel": run.channel, "transport": run.transport, "detail": run.detail},
    )
    if run.outcome == "failed":
        log.error("canary %s via %s failed: %s", run.channel, run.transport, run.detail)
    return run.outcome


def alert(
    database: Database, channels: Mapping[str, Channel], targets: Mapping[str, list[str]], *, now: dt.datetime
) -> int:
    """Tell the designated targets about failed canaries through the channels that did not fail."""
    with database.transaction() as session:
        failed = session.scalars(
            select(CanaryRun).where(CanaryRun.outcome == "failed", CanaryRun.alerted.is_(False)).with_for_update()
        ).all()
        if not failed:
            return 0
        broken = {run.channel for run in failed}
        text = "failover canary FAILED: " + "; ".join(
            f"{run.channel} via {run.transport} to {run.target}: {run.detail}" for run in failed
        )
        sent = 0
        for name in CHANNELS:
            channel = channels.get(name)
            if name in broken or channel is None or channel.transport not in PROVIDER_TRANSPORTS:
                continue
            for target in targets.get(name, []):
                body = text[:1500]
                try:
                    channel.send([OutgoingMessage(CANARY_DELIVERY_ID, target, body, subject=SUBJECT + " FAILED")])
                    sent += 1
                except DeliveryError as exc:
                    log.error("canary alert via %s not sent: %s", name, exc)
        for run in failed:
            run.alerted = True
        audit.record(
            session,
            action="canary.alerted",
            actor="canary",
            details={"runs": [run.id for run in failed], "alerts": sent},
        )
        if not sent:
            log.error("canary failed and no other channel could tell anyone: %s", text)
        return sent


def history(session: Session, *, limit: int = 30) -> list[CanaryRun]:
    query = select(CanaryRun).order_by(CanaryRun.started_at.desc(), CanaryRun.id.desc()).limit(limit)
    return list(session.scalars(query))
