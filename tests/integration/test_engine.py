"""The activation engine and the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Sequence

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from failover.channels.base import OutgoingMessage, Receipt
from failover.engine import audit, dispatch
from failover.errors import (
    ApprovalError,
    DeliveryError,
    InvalidRequest,
    NotFound,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from failover.models import Activation, AuditEvent, Delivery, DispatchBatch, Incident, Notice, OutboxMessage
from failover.runtime import Runtime


class ScriptedChannel:
    """A channel whose answers a test scripts; counts what it 'sent'."""

    transport = "scripted"

    def __init__(self, name: str, max_batch: int = 1, delay: float = 0.0) -> None:
        self.name = name
        self.max_batch = max_batch
        self.delay = delay
        self.errors: dict[str, DeliveryError] = {}  # address -> error to raise
        self.sent: Counter[int] = Counter()
        self.lock = threading.Lock()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        if self.delay:
            time.sleep(self.delay)
        for message in messages:
            if message.to in self.errors:
                raise self.errors[message.to]
        with self.lock:
            self.sent.update(m.delivery_id for m in messages)
        return [Receipt(m.delivery_id, f"X{m.delivery_id}") for m in messages]


def statuses(runtime: Runtime, activation_id: int | None = None) -> Counter[str]:
    with runtime.database.reading() as session:
        query = select(Delivery.status, func.count()).group_by(Delivery.status)
        if activation_id is not None:
            query = query.where(Delivery.activation_id == activation_id)
        return Counter(dict(session.execute(query).all()))


def chain_ok(runtime: Runtime) -> bool:
    with runtime.database.reading() as session:
        return audit.verify(session).ok


def activate(runtime: Runtime, runbook: str = "exchange-outage", **kwargs: object):  # type: ignore[no-untyped-def]
    published: list[int] = []
    runtime.relay.publisher = lambda batch_id, countdown: published.append(batch_id)
    accepted, ok = runtime.activations.activate(
        runbook_id=runbook, reason=kwargs.pop("reason", "test"), actor=kwargs.pop("actor", "alice"), **kwargs
    )
    assert ok
    return accepted, published


def drain(runtime: Runtime, batch_ids: list[int]) -> None:
    for batch_id in batch_ids:
        runtime.delivery.send_batch(batch_id)


def test_activation_writes_ledger_batches_and_audit_in_one_go(runtime: Runtime) -> None:
    accepted, published = activate(runtime)
    assert accepted.counts == {"sms": 3, "email": 7, "status": 1}
    assert accepted.skipped == 1  # erin has no email address
    assert sorted(published) == sorted(accepted.batch_ids) and len(published) == 3
    assert statuses(runtime) == {"pending": 11, "skipped": 1}
    with runtime.database.reading() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(DispatchBatch).where(DispatchBatch.published_at.is_not(None))
            )
            == 3
        )
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["incident.opened", "activation.queued"]


def test_sending_marks_every_row_sent_once_and_completes_the_activation(runtime: Runtime) -> None:
    accepted, published = activate(runtime)
    drain(runtime, published)
    assert statuses(runtime) == {"sent": 11, "skipped": 1}
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 10
        notice = session.scalars(select(Notice)).one()
        assert (notice.title, notice.severity, notice.incident_id) == ("Email delays", "major", accepted.incident_id)
        assert session.get(Activation, accepted.activation_id).state == "completed"
        sent_events = session.scalars(select(AuditEvent.incident_id).where(AuditEvent.action == "delivery.sent"))
        assert list(sent_events) == [accepted.incident_id] * 11  # per-message events belong to their incident
    # Running the batches again sends nothing more.
    drain(runtime, published)
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 10
    assert chain_ok(runtime)


def test_two_workers_on_one_batch_send_each_row_once(runtime: Runtime) -> None:
    channel = ScriptedChannel("sms", delay=0.01)
    runtime.delivery.channels["sms"] = channel  # type: ignore[index]
    _, published = activate(runtime)
    sms_batch = [b for b in published if _channel_of(runtime, b) == "sms"]
    threads = [threading.Thread(target=runtime.delivery.send_batch, args=(sms_batch[0],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(channel.sent.values()) == 3 and set(channel.sent.values()) == {1}
    assert chain_ok(runtime)


def _channel_of(runtime: Runtime, batch_id: int) -> str:
    with runtime.database.reading() as session:
        return session.get(DispatchBatch, batch_id).channel


def test_retryable_errors_wait_then_fail_after_the_attempt_limit(runtime: Runtime) -> None:
    channel = ScriptedChannel("sms")
    channel.errors["+12025550101"] = RetryableDeliveryError("HTTP 429", code="20429", retry_after=30)
    runtime.delivery.channels["sms"] = channel  # type: ignore[index]
    runtime.delivery.settings = runtime.delivery.settings.model_copy(update={"max_attempts": 3})
    start = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        _, published = activate(runtime)
        sms = next(b for b in published if _channel_of(runtime, b) == "sms")
        runtime.delivery.send_batch(sms)
        row = _row(runtime, "alice", "sms")
        assert (row.status, row.attempts, row.error_code) == ("pending", 1, "20429")
        assert row.next_attempt_at >= start + dt.timedelta(seconds=30)  # Retry-After honoured
        runtime.delivery.send_batch(sms)  # not due yet: nothing is claimed
        assert _row(runtime, "alice", "sms").attempts == 1
        for _ in range(2):
            clock.tick(dt.timedelta(seconds=200))
            runtime.delivery.send_batch(sms)
        row = _row(runtime, "alice", "sms")
        assert (row.status, row.attempts) == ("failed", 3)
    assert statuses(runtime)["failed"] == 1
    assert channel.sent.total() == 2  # bob and heidi


def test_permanent_errors_fail_at_once(runtime: Runtime) -> None:
    channel = ScriptedChannel("sms")
    channel.errors["+12025550102"] = PermanentDeliveryError("HTTP 400 code 21211: invalid", code="21211")
    runtime.delivery.channels["sms"] = channel  # type: ignore[index]
    _, published = activate(runtime)
    drain(runtime, published)
    row = _row(runtime, "bob", "sms")
    assert (row.status, row.attempts, row.error_code) == ("failed", 1, "21211")
    with runtime.database.reading() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "delivery.failed")).one()
    assert event.details["permanent"] is True and event.target_id == str(row.id)


def test_a_maybe_sent_error_is_reconciled_before_any_resend(runtime: Runtime) -> None:
    channel = ScriptedChannel("sms")
    channel.errors["+12025550101"] = RetryableDeliveryError("timeout", code="timeout", maybe_sent=True)
    runtime.delivery.channels["sms"] = channel  # type: ignore[index]
    start = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        _, published = activate(runtime)
        drain(runtime, published)
        assert _row(runtime, "alice", "sms").status == "in_doubt"
        # The provider had in fact accepted it: reconciliation finds it and nothing is resent.
        channel.find = lambda message, since: Receipt(message.delivery_id, "SMfound")  # type: ignore[attr-defined]
        clock.tick(dt.timedelta(minutes=5))
        report = runtime.delivery.sweep()
        assert report.reconciled_found == 1
        row = _row(runtime, "alice", "sms")
        assert (row.status, row.provider_id) == ("sent", "SMfound")
    assert channel.sent["+12025550101"] == 0


def test_an_in_doubt_row_that_was_not_sent_goes_out_again(runtime: Runtime) -> None:
    channel = ScriptedChannel("sms")
    channel.errors["+12025550101"] = RetryableDeliveryError("timeout", code="timeout", maybe_sent=True)
    runtime.delivery.channels["sms"] = channel  # type: ignore[index]
    published_now: list[int] = []
    start = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        _, published = activate(runtime)
        drain(runtime, published)
        channel.errors.clear()
        channel.find = lambda message, since: None  # type: ignore[attr-defined]
        runtime.relay.publisher = lambda batch_id, countdown: published_now.append(batch_id)
        clock.tick(dt.timedelta(minutes=5))
        report = runtime.delivery.sweep()
        assert report.reconciled_missing == 1 and report.republished == 1
        drain(runtime, published_now)
    row = _row(runtime, "alice", "sms")
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_worker_that_died_mid_send_leaves_rows_that_the_sweep_reconciles(runtime: Runtime) -> None:
    start = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    with freeze_time(start) as clock:
        _, published = activate(runtime)
        with runtime.database.transaction() as session:
            claimed = dispatch._claim(session, published[0], start)  # the worker claimed, then died
        assert claimed
        clock.tick(dt.timedelta(seconds=runtime.settings.sending_timeout + 1))
        runtime.relay.publisher = lambda batch_id, countdown: None
        report = runtime.delivery.sweep()
    # The outbox never stored them, so reconciliation says "not sent" and they are queued again.
    assert report.reconciled_missing == len(claimed)
    assert statuses(runtime)["pending"] == 11


def test_the_sweep_publishes_batches_the_broker_never_took(runtime: Runtime) -> None:
    from failover.errors import BrokerUnavailable

    def down(batch_id: int, countdown: float) -> None:
        raise BrokerUnavailable("connection refused")

    runtime.relay.publisher = down
    accepted, ok = runtime.activations.activate(runbook_id="exchange-outage", reason="broker down", actor="alice")
    assert not ok and accepted.batch_ids
    assert statuses(runtime)["pending"] == 11  # accepted and durable all the same
    published: list[int] = []
    runtime.relay.publisher = lambda batch_id, countdown: published.append(batch_id)
    report = runtime.delivery.sweep()
    assert report.broker_ok and sorted(published) == sorted(accepted.batch_ids)
    assert runtime.delivery.sweep().republished == 0  # published and not yet stale: left alone


def test_activating_twice_for_one_incident_returns_the_first(runtime: Runtime) -> None:
    first, _ = activate(runtime)
    again, published = activate(runtime, incident_id=first.incident_id)
    assert not again.created and again.activation_id == first.activation_id and published == []


def test_racing_activations_for_one_incident_make_one(runtime: Runtime) -> None:
    first, _ = activate(runtime)
    runtime.relay.publisher = lambda batch_id, countdown: None
    with runtime.database.transaction() as session:
        incident_id = session.get(Incident, first.incident_id).id
    results = []

    def go() -> None:
        accepted, _ = runtime.activations.activate(
            runbook_id="teams-outage", reason="race", actor="bob", incident_id=incident_id
        )
        results.append(accepted)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.activation_id for r in results}) == 1
    assert sum(r.created for r in results) == 1


def test_approval_needs_a_second_operator(runtime: Runtime) -> None:
    accepted, published = activate(runtime, "m365-suite-outage", actor="alice")
    assert accepted.state == "pending_approval" and published == []
    assert statuses(runtime) == {}
    with pytest.raises(ApprovalError, match="another operator must approve"):
        runtime.activations.approve(activation_id=accepted.activation_id, actor="alice")
    approved, _ = runtime.activations.approve(activation_id=accepted.activation_id, actor="bob")
    assert approved.state == "queued" and approved.counts["sms"] == 7
    with pytest.raises(ApprovalError, match="not awaiting approval"):
        runtime.activations.approve(activation_id=accepted.activation_id, actor="carol")


def test_resolving_sends_each_all_clear_once_and_closes_notices(runtime: Runtime) -> None:
    accepted, published = activate(runtime)
    drain(runtime, published)
    results, _ = runtime.activations.resolve(incident_id=accepted.incident_id, actor="alice")
    assert [r.counts for r in results] == [{"sms": 3, "email": 7, "status": 1}]
    with pytest.raises(InvalidRequest, match="already resolved"):
        runtime.activations.resolve(incident_id=accepted.incident_id, actor="alice")
    drain(runtime, results[0].batch_ids)
    with runtime.database.reading() as session:
        notices = {n.title: (n.state, n.resolution) for n in session.scalars(select(Notice))}
    assert notices == {"Email delays": ("closed", "Service is restored. Thank you for your patience.")}
    assert chain_ok(runtime)


def test_bad_requests_change_nothing(runtime: Runtime) -> None:
    runtime.relay.publisher = lambda batch_id, countdown: None
    with pytest.raises(NotFound, match="no runbook 'nope'"):
        runtime.activations.activate(runbook_id="nope", reason="x", actor="a")
    with pytest.raises(InvalidRequest, match="an internal note is required"):
        runtime.activations.activate(runbook_id="exchange-outage", reason="  ", actor="a")
    with pytest.raises(InvalidRequest, match="SMS text is 1700 characters"):
        runtime.activations.activate(runbook_id="exchange-outage", reason="x", actor="a", override="y" * 1700)
    with pytest.raises(NotFound, match="no incident 999"):
        runtime.activations.resolve(incident_id=999, actor="a")
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_dry_run_writes_nothing(runtime: Runtime) -> None:
    preview = runtime.activations.preview(runbook_ids=["exchange-outage"], reason="what if", actor="alice")
    assert preview.counts == {"sms": 3, "email": 7, "status": 1}
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_drill_reaches_only_the_drill_group(runtime: Runtime) -> None:
    accepted, published = activate(runtime, drill=True)
    drain(runtime, published)
    with runtime.database.reading() as session:
        people = set(session.scalars(select(Delivery.person_id).where(Delivery.status == "sent")))
        bodies = list(session.scalars(select(OutboxMessage.body)))
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
        assert session.get(Incident, accepted.incident_id).drill
    assert people == {"alice", "carol"}  # it-leads
    assert all(body.startswith("[DRILL] ") for body in bodies)


def _row(runtime: Runtime, person: str, channel: str) -> Delivery:
    with runtime.database.reading() as session:
        return session.scalars(
            select(Delivery)
            .where(Delivery.person_id == person, Delivery.channel == channel)
            .order_by(Delivery.id.desc())
            .limit(1)
        ).one()
