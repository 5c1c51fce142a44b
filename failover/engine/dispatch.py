"""Dispatch: send the due rows of one batch, exactly once, and record what happened.

The ledger state machine::

    pending --claim--> sending --receipt--> sent (--callbacks--> delivered / failed)
       ^                  |  \\--permanent error / attempts used up--> failed
       |                  |
       +--retryable-------+   (not sent: back to pending with next_attempt_at)
                          \\--may have been sent (timeout, 5xx, crash)--> in_doubt
                                 --reconcile: found--> sent / not found--> pending

A row enters ``sending`` only through a conditional UPDATE from ``pending``,
so when two workers hold the same batch only one of them sends each row.
Results are recorded in small groups as they arrive, so a worker killed
mid-batch leaves at most a handful of rows ``sending``; the sweep finds them
(``reconcile.stale_sending``) and reconciles them with the provider before any resend
(failover/engine/reconcile.py). Rows are written by ``ledger.write_ledger``; publishing is engine/relay.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Row, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from failover import logs, metrics
from failover.channels.base import Channel, OutgoingMessage, Receipt
from failover.channels.sms_providers import providers_of
from failover.clock import utcnow
from failover.db import Database
from failover.domain import providers
from failover.domain.retry import backoff_seconds
from failover.engine import audit, ledger
from failover.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from failover.models import Activation, Delivery, DeliveryStatus, DispatchBatch
from failover.sendloop import LoopGuard, SendLoop
from failover.throttle import Guard

log = logging.getLogger(__name__)

IN_DOUBT = DeliveryStatus.IN_DOUBT
RECORD_EVERY = 25  # results per recording transaction
RECORD_INTERVAL_S = 0.25
_T = Delivery.__table__


@dataclass
class BatchResult:
    batch_id: int
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    in_doubt: int = 0


@dataclass(frozen=True)
class _Outcome:
    messages: Sequence[OutgoingMessage]
    receipts: Sequence[Receipt] = ()
    error: DeliveryError | None = None
    transport: str | None = None  # the provider that carried it (or refused it last)
    passed_over: tuple[str, ...] = ()  # "twilio: circuit_open": providers that could not take it first


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 120.0
    sending_timeout: float = 120.0  # a claim not refreshed for this long is presumed dead


DEFAULT_POLICY = Policy()


def send_batch(
    database: Database,
    channels: Mapping[str, Channel],
    batch_id: int,
    *,
    policy: Policy = DEFAULT_POLICY,
    guard: Guard | None = None,
    loop: SendLoop | None = None,
    actor: str = "dispatcher",
) -> BatchResult:
    """Claim the batch's due pending rows, send them, record receipts and errors.

    With a ``loop`` every piece goes out on the worker's send loop, guarded by the loop's own
    guard (slots leased in blocks; ``guard`` is then not used); without one, one piece after the
    other on this thread, each behind ``guard``.
    """
    result = BatchResult(batch_id)
    with database.transaction() as session:
        batch = session.get(DispatchBatch, batch_id)
        if batch is None:
            return result
        channel = channels[batch.channel]
        activation_id = batch.activation_id
        logs.bind(activation_id=activation_id, batch_id=batch_id)
        now = utcnow()
        batch.started_at = now
        claimed = _claim(session, batch_id, now)
        messages = _messages(session, claimed)
    attempts = {row.id: row.attempts for row in claimed}
    if messages:
        with _ClaimKeeper(database, attempts, policy.sending_timeout / 4) as keeper:
            for outcomes in _send_all(channel, messages, loop, guard):
                _with_db_retries(lambda o=outcomes: _record(database, channel, o, attempts, policy, result, actor))
                keeper.release(d for outcome in outcomes for d in _ids(outcome))
    with database.transaction() as session:
        ledger.complete_finished(session, {activation_id}, actor)
    return result


class _ClaimKeeper:
    """Refreshes ``claimed_at`` of the rows this worker still holds, while it is alive.

    Rows may wait a while for a provider slot (rate limits, a 429 slow-down).
    Without the refresh the sweep would take a long wait for a dead worker,
    reconcile (finding nothing, as nothing was sent yet) and queue the row
    again, while this worker is about to send it: a duplicate. Only the rows
    of a worker that stopped refreshing - killed, or frozen past the timeout -
    go in doubt.
    """

    def __init__(self, database: Database, held: Mapping[int, int], interval: float) -> None:
        self.database = database
        self.held = set(held)
        self.interval = max(0.05, interval)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-keeper", daemon=True)

    def __enter__(self) -> _ClaimKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def release(self, ids: Iterable[int]) -> None:
        with self._lock:
            self.held.difference_update(ids)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = sorted(self.held)
            if not ids:
                continue
            try:
                with self.database.transaction() as session:
                    session.execute(
                        update(_T)
                        .where(_T.c.id.in_(ids), _T.c.status == DeliveryStatus.SENDING)
                        .values(claimed_at=utcnow())
                    )
            except DBAPIError as exc:  # a database blip: the next beat tries again
                log.warning("could not refresh %d claimed row(s): %s", len(ids), type(exc.orig).__name__)


def _ids(outcome: _Outcome) -> list[int]:
    return [m.delivery_id for m in outcome.messages]


def _claim(session: Session, batch_id: int, now: dt.datetime) -> Sequence[Row[Any]]:
    statement = (
        update(_T)
        .where(
            _T.c.batch_id == batch_id,
            _T.c.status == DeliveryStatus.PENDING,
            or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now),
        )
        .values(status=DeliveryStatus.SENDING, claimed_at=now, attempts=_T.c.attempts + 1, updated_at=now)
        .returning(_T.c.id, _T.c.attempts)
    )
    return session.execute(statement).all()


def _messages(session: Session, claimed: Sequence[Row[Any]]) -> list[OutgoingMessage]:
    if not claimed:
        return []
    ids = [row.id for row in claimed]
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.address,
            Delivery.body,
            Delivery.subject,
            Delivery.severity,
            Delivery.step,
            Activation.incident_id,
        )
        .join(Activation, Activation.id == Delivery.activation_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    return [
        OutgoingMessage(r.id, r.address, r.body, r.subject, severity=r.severity, incident_id=r.incident_id, step=r.step)
        for r in rows
    ]


def _send_all(
    channel: Channel, messages: list[OutgoingMessage], loop: SendLoop | None, guard: Guard | None
) -> Iterable[list[_Outcome]]:
    """Send in provider-sized pieces; yield outcomes in small groups as they complete."""
    size = max(1, channel.max_batch)
    pieces = [messages[i : i + size] for i in range(0, len(messages), size)]
    if loop is None:
        for piece in pieces:
            yield [_send_piece(channel, piece, guard)]
        return
    done: queue.Queue[_Outcome] = queue.Queue()
    loop.start_all(
        [
            (_send_piece_async(channel, piece, loop), functools.partial(_hand_back, done, channel, piece))
            for piece in pieces
        ]
    )
    pending, buffer, last_flush = len(pieces), [], time.monotonic()
    while pending:
        buffer.append(done.get())
        pending -= 1
        if len(buffer) >= RECORD_EVERY or time.monotonic() - last_flush >= RECORD_INTERVAL_S or not pending:
            yield buffer
            buffer, last_flush = [], time.monotonic()


def _hand_back(
    done: queue.Queue[_Outcome], channel: Channel, piece: Sequence[OutgoingMessage], task: asyncio.Task[_Outcome]
) -> None:
    """Whatever happened on the loop, the piece's outcome comes back (a lost one would hang the batch)."""
    exc = asyncio.CancelledError() if task.cancelled() else task.exception()
    if exc is None:
        done.put(task.result())
        return
    log.error("sending a piece failed unexpectedly: %s", type(exc).__name__)
    done.put(_internal_error(piece, channel.transport, (), exc))


def _send_piece(channel: Channel, piece: Sequence[OutgoingMessage], guard: Guard | None) -> _Outcome:
    """Offer the piece to the channel's providers in order; the next one only when the policy says so."""
    outcome = _Outcome(piece)
    passed: tuple[str, ...] = ()
    for provider in providers_of(channel):
        outcome = _send_via(provider, piece, guard, passed)
        if _final(provider, outcome):
            return outcome
        passed += _passed_over(provider, outcome)
    return outcome


async def _send_piece_async(channel: Channel, piece: Sequence[OutgoingMessage], loop: SendLoop) -> _Outcome:
    """``_send_piece`` on the send loop."""
    outcome = _Outcome(piece)
    passed: tuple[str, ...] = ()
    async with loop.admit():
        for provider in providers_of(channel):
            outcome = await _send_via_async(provider, piece, loop.guard, passed)
            if _final(provider, outcome):
                return outcome
            passed += _passed_over(provider, outcome)
    return outcome


def _final(provider: Channel, outcome: _Outcome) -> bool:
    error = outcome.error
    maybe_sent = isinstance(error, RetryableDeliveryError) and error.maybe_sent
    return error is None or not providers.fails_over(provider.transport, error.code, maybe_sent=maybe_sent)


def _passed_over(provider: Channel, outcome: _Outcome) -> tuple[str, ...]:
    return (f"{provider.transport}: {outcome.error.code if outcome.error else ''}",)


def _send_via(
    provider: Channel, piece: Sequence[OutgoingMessage], guard: Guard | None, passed: tuple[str, ...]
) -> _Outcome:
    transport = provider.transport
    try:
        if guard is None:
            return _Outcome(piece, receipts=provider.send(piece), transport=transport, passed_over=passed)
        with guard.request(transport):
            return _Outcome(piece, receipts=provider.send(piece), transport=transport, passed_over=passed)
    except DeliveryError as exc:
        return _Outcome(piece, error=exc, transport=transport, passed_over=passed)
    except Exception as exc:  # a bug in a channel must not lose the rows it held
        log.exception("channel %s raised unexpectedly", transport)
        return _internal_error(piece, transport, passed, exc)


async def _send_via_async(
    provider: Channel, piece: Sequence[OutgoingMessage], guard: LoopGuard | None, passed: tuple[str, ...]
) -> _Outcome:
    transport = provider.transport
    send_async = getattr(provider, "send_async", None)
    try:
        async with guard.request(transport) if guard is not None else contextlib.nullcontext():
            if send_async is not None:
                receipts = await send_async(piece)
            else:  # no asynchronous path (voice, chat, outbox, status page): the loop's thread pool
                receipts = await asyncio.get_running_loop().run_in_executor(None, provider.send, piece)
        return _Outcome(piece, receipts=receipts, transport=transport, passed_over=passed)
    except DeliveryError as exc:
        return _Outcome(piece, error=exc, transport=transport, passed_over=passed)
    except Exception as exc:  # a bug in a channel must not lose the rows it held
        log.exception("channel %s raised unexpectedly", transport)
        return _internal_error(piece, transport, passed, exc)


def _internal_error(
    piece: Sequence[OutgoingMessage], transport: str, passed: tuple[str, ...], exc: BaseException
) -> _Outcome:
    error = RetryableDeliveryError(f"internal error: {type(exc).__name__}", code="internal", maybe_sent=True)
    return _Outcome(piece, error=error, transport=transport, passed_over=passed)


# Errors raised before a request left this process: the attempt is given back.
NOT_ATTEMPTED = frozenset({"throttled", "limiter_unavailable", "circuit_open"})


@dataclass(frozen=True)
class _Change:
    delivery_id: int
    status: str
    event: audit.Entry
    transport: str
    provider_id: str | None = None
    due: dt.datetime | None = None
    code: str | None = None
    error: str | None = None
    refund: bool = False


def _changes(
    channel: Channel,
    outcomes: Sequence[_Outcome],
    attempts: Mapping[int, int],
    policy: Policy,
    actor: str,
    now: dt.datetime,
) -> list[_Change]:
    """What each outcome means for its ledger row (pure)."""
    changes: list[_Change] = []
    incidents = {m.delivery_id: m.incident_id for outcome in outcomes for m in outcome.messages}
    for outcome in outcomes:
        error = outcome.error
        transport = outcome.transport or channel.transport
        passed = {"passed_over": list(outcome.passed_over)} if outcome.passed_over else {}
        if error is None:
            for receipt in outcome.receipts:
                details = {
                    "channel": channel.name,
                    "transport": transport,
                    "provider_id": receipt.provider_id,
                    **passed,
                }
                changes.append(
                    _Change(
                        receipt.delivery_id,
                        DeliveryStatus.SENT,
                        audit.Entry(
                            "delivery.sent",
                            actor,
                            "delivery",
                            receipt.delivery_id,
                            incident_id=incidents.get(receipt.delivery_id),
                            details=details,
                        ),
                        transport,
                        provider_id=receipt.provider_id,
                    )
                )
            continue
        for message in outcome.messages:
            refund = error.code in NOT_ATTEMPTED
            tries = attempts.get(message.delivery_id, 1) - (1 if refund else 0)
            details: dict[str, Any] = {
                "channel": channel.name,
                "transport": transport,
                "error": error.detail,
                "code": error.code,
                "attempt": tries,
                **passed,
            }
            maybe_sent = isinstance(error, RetryableDeliveryError) and error.maybe_sent
            if maybe_sent or (isinstance(error, RetryableDeliveryError) and tries < policy.max_attempts):
                # A message that may have gone out is reconciled even on its last attempt:
                # only the provider can say whether the person got it.
                delay = backoff_seconds(
                    max(1, tries), retry_after=error.retry_after, base=policy.backoff_base, cap=policy.backoff_cap
                )
                status = IN_DOUBT if maybe_sent else DeliveryStatus.PENDING
                kind = "delivery.in_doubt" if maybe_sent else "delivery.retry_scheduled"
                details["retry_in_s"] = round(delay, 2)
                due: dt.datetime | None = now + dt.timedelta(seconds=delay)
            else:
                status, kind, due = DeliveryStatus.FAILED, "delivery.failed", None
                details["permanent"] = isinstance(error, PermanentDeliveryError)
            changes.append(
                _Change(
                    message.delivery_id,
                    status,
                    audit.Entry(
                        kind, actor, "delivery", message.delivery_id, incident_id=message.incident_id, details=details
                    ),
                    transport,
                    due=due,
                    code=error.code,
                    error=error.detail[:1000],
                    refund=refund,
                )
            )
    return changes


def _record(
    database: Database,
    channel: Channel,
    outcomes: Sequence[_Outcome],
    attempts: Mapping[int, int],
    policy: Policy,
    result: BatchResult,
    actor: str,
) -> None:
    """Write outcomes to the ledger and the audit log in one transaction.

    Only rows still ``sending`` are touched, so recording the same outcomes
    twice (a retry after an ambiguous commit) changes nothing the second time.
    """
    now = utcnow()
    changes = _changes(channel, outcomes, attempts, policy, actor, now)
    if not changes:
        return
    with database.transaction() as session:
        live = set(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.id.in_([c.delivery_id for c in changes]), Delivery.status == DeliveryStatus.SENDING)
                .with_for_update()
            )
        )
        changes = [c for c in changes if c.delivery_id in live]
        connection = session.connection()
        by_status: dict[str, list[_Change]] = {}
        for change in changes:
            by_status.setdefault(change.status, []).append(change)
        for status, group in by_status.items():
            values: dict[str, Any] = {
                "status": status,
                "updated_at": now,
                "transport": bindparam("_transport"),
                "error_code": bindparam("_code"),
                "last_error": bindparam("_err"),
            }
            if status == DeliveryStatus.SENT:
                values.update(provider_id=bindparam("_pid"), sent_at=now)
            else:
                values.update(
                    next_attempt_at=bindparam("_due"), attempts=_T.c.attempts - bindparam("_refund", type_=Integer)
                )
            connection.execute(
                update(_T).where(_T.c.id == bindparam("_id")).values(**values),
                [
                    {
                        "_id": c.delivery_id,
                        "_transport": c.transport,
                        "_pid": c.provider_id,
                        "_due": c.due,
                        "_code": c.code,
                        "_err": c.error,
                        "_refund": int(c.refund),
                    }
                    for c in group
                ],
            )
        audit.record_many(session, [c.event for c in changes])
    counts = {status: len(group) for status, group in by_status.items()}
    metrics.delivery_outcomes(channel.name, channel.transport, counts)
    result.sent += counts.get(DeliveryStatus.SENT, 0)
    result.failed += counts.get(DeliveryStatus.FAILED, 0)
    result.retrying += counts.get(DeliveryStatus.PENDING, 0)
    result.in_doubt += counts.get(IN_DOUBT, 0)


def _with_db_retries(write: Callable[[], None], *, budget_s: float = 30.0) -> None:
    """Record results through a database blip (restart, failover) instead of dropping them.

    Receipts exist only in memory until written: losing them would turn sent
    rows into in-doubt ones. Each attempt is a whole transaction, and every
    UPDATE is guarded by the row's state, so a retry never applies twice.
    """
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            write()
            return
        except DBAPIError as exc:
            if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                raise
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable while recording results (%s); retrying", type(exc.orig).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 3.0)
