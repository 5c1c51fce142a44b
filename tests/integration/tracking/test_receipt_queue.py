"""Receipts through the queue: the webhook verifies, queues (Redis Stream) and answers; a drain applies groups.

The web answers 2xx before the ledger changes; ``drain`` (the apply_receipts
task's body) applies up to a group's worth per transaction and acknowledges
only after commit. Killed mid-group, the entries stay pending and are applied
again; Redis down, the web applies the receipt itself as without a queue.
Each test has its own stream in the session's Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from failover.engine import tracking as tracking_engine
from failover.models import ProviderEvent
from failover.receiptqueue import ReceiptQueue
from tests.fakes import twilio as tw
from tests.integration.tracking.support import EVENTS_URL, PHONES, STATUS_URL, Tracked
from tests.integration.tracking.test_vonage import Dual, dual, fake_vonage  # noqa: F401  (fixtures)
from tests.integration.workers import REPO
from tests.services import RedisServer, free_port

pytestmark = pytest.mark.integration
ONCALL = ("alice", "bob", "heidi")


@pytest.fixture
def queued(tracked: Tracked, redis_server: RedisServer) -> Iterator[Tracked]:
    """``tracked`` with a receipts queue of its own (as production has with the shared Redis)."""
    stream = f"test:receipts:{uuid.uuid4().hex[:12]}"
    queue = ReceiptQueue(redis_server.url, claim_after_s=0.0, stream=stream)
    tracked.runtime.tracking.queue = queue
    wakes: list[int] = []
    tracked.runtime.tracking.waker = lambda: wakes.append(1)
    tracked.wakes = wakes  # type: ignore[attr-defined]
    yield tracked
    queue.close()


def queue_of(tracked: Tracked) -> ReceiptQueue:
    queue = tracked.runtime.tracking.queue
    assert queue is not None
    return queue


def sent(tracked: Tracked, runbook: str = "tracked") -> None:
    tracked.activate(runbook)
    tracked.drain()


def statuses(tracked: Tracked) -> dict[str, str]:
    return {row.person_id: row.status for row in tracked.rows(channel="sms")}


def provider_events(tracked: Tracked) -> int:
    with tracked.runtime.database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


def test_the_webhook_queues_answers_204_and_a_drain_applies_the_group_in_one_transaction(
    queued: Tracked, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent(queued)
    assert queued.twilio.deliver() == [204] * 6  # sent + delivered for alice, bob, heidi
    assert set(statuses(queued).values()) == {"sent"}  # answered before anything was applied
    assert queue_of(queued).depth() == 6 and provider_events(queued) == 0
    assert queued.wakes == [1]  # type: ignore[attr-defined]  # one drain woken for the burst, not six
    groups: list[int] = []
    original = tracking_engine.record_receipts

    def spy(session: Any, catalog: Any, events: Any, **kwargs: Any) -> Any:
        groups.append(len(events))
        return original(session, catalog, events, **kwargs)

    monkeypatch.setattr(tracking_engine, "record_receipts", spy)
    drained = queued.runtime.tracking.drain()
    assert groups == [6]  # all six receipts in one transaction
    assert (drained.entries, drained.groups, drained.applied) == (6, 1, 6)
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")
    assert queue_of(queued).depth() == 0
    assert len(queued.events("delivery.delivered")) == 3
    assert queued.chain_ok()
    # The drain let go: the next callback wakes a new one.
    message = queued.message_to("alice")
    queued.twilio.post_signed(message["_status_callback"], queued.twilio.receipt_form(message, "read"))
    assert queued.wakes == [1, 1]  # type: ignore[attr-defined]


def test_groups_are_bounded(queued: Tracked, monkeypatch: pytest.MonkeyPatch) -> None:
    sent(queued)
    queued.twilio.deliver()
    groups: list[int] = []
    original = tracking_engine.record_receipts
    monkeypatch.setattr(
        tracking_engine,
        "record_receipts",
        lambda session, catalog, events, **kw: groups.append(len(events)) or original(session, catalog, events, **kw),
    )
    assert queued.runtime.tracking.drain(group_size=4).groups == 2
    assert groups == [4, 2]
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")


def test_duplicates_and_out_of_order_receipts_in_one_group_change_nothing_twice(queued: Tracked) -> None:
    sent(queued)
    queued.twilio.deliver(reverse=True)  # delivered first, then sent
    message = queued.message_to("alice")
    for status in ("delivered", "sent", "queued"):  # repeats and a late one, in the same group
        queued.twilio.post_signed(message["_status_callback"], queued.twilio.receipt_form(message, status))
    queued.runtime.tracking.drain()
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")
    assert len(queued.events("delivery.delivered")) == 3
    assert provider_events(queued) == 7  # six receipts and the "queued" one; the repeats were dropped
    # The same receipts again, in a later group: nothing moves.
    queued.twilio.post_signed(message["_status_callback"], queued.twilio.receipt_form(message, "delivered"))
    queued.runtime.tracking.drain()
    assert len(queued.events("delivery.delivered")) == 3 and provider_events(queued) == 7
    assert queued.chain_ok()


def test_an_undelivered_receipt_falls_back_from_the_drain(queued: Tracked) -> None:
    queued.twilio.outcomes[PHONES["bob"]] = ("undelivered", 30006)
    sent(queued)
    queued.twilio.deliver()
    assert queued.row("bob").status == "sent" and not queued.published
    queued.runtime.tracking.drain()
    row = queued.row("bob")
    assert (row.status, row.error_code) == ("failed", "30006")
    assert [e.details["to"] for e in queued.events("fallback.queued")] == ["voice"]
    assert queued.published  # the relay published the fallback batch after the group's commit
    queued.drain()
    assert [call["to"] for call in queued.twilio.calls] == [PHONES["bob"]]


def test_a_receipt_for_an_unknown_row_is_audited_as_today(queued: Tracked) -> None:
    form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered", "AccountSid": queued.twilio.account_sid}
    assert queued.twilio.post_signed(f"{STATUS_URL}?delivery=999999", form)[0] == 204
    queued.runtime.tracking.drain()
    (event,) = queued.events("receipt.unknown_delivery")
    assert event.details["status"] == "delivered"


def test_a_failed_transaction_leaves_the_group_queued_and_the_next_drain_applies_it(
    queued: Tracked, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent(queued)
    queued.twilio.deliver()
    original = tracking_engine.record_receipts

    def database_gone(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # everything written, then the commit never happens
        raise ConnectionError("the database went away")

    monkeypatch.setattr(tracking_engine, "record_receipts", database_gone)
    with pytest.raises(ConnectionError):
        queued.runtime.tracking.drain()
    assert set(statuses(queued).values()) == {"sent"} and provider_events(queued) == 0
    assert queue_of(queued).depth() == 6  # still there, pending on this consumer
    monkeypatch.setattr(tracking_engine, "record_receipts", original)
    assert queued.runtime.tracking.drain().entries == 6  # claimed back (claim_after_s=0 here)
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")
    assert queue_of(queued).depth() == 0


def test_committed_but_not_acknowledged_is_applied_again_without_effect(
    queued: Tracked, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent(queued)
    queued.twilio.deliver()
    queue = queue_of(queued)
    real_ack = queue.ack

    def die_before_ack(ids: list[str], *, hold: bool = False) -> None:
        raise SystemExit("killed between commit and XACK")

    monkeypatch.setattr(queue, "ack", die_before_ack)
    with pytest.raises(SystemExit):
        queued.runtime.tracking.drain()
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")
    monkeypatch.setattr(queue, "ack", real_ack)
    assert queued.runtime.tracking.drain().entries == 6  # the same six, again
    assert queue.depth() == 0
    assert len(queued.events("delivery.delivered")) == 3 and provider_events(queued) == 6
    assert queued.chain_ok()


KILLED_DRAIN = textwrap.dedent("""\
    import os, signal, sys
    from failover.engine import audit
    from failover.receiptqueue import ReceiptQueue
    from failover.runtime import Runtime
    from failover.settings import load_settings

    runtime = Runtime(load_settings())
    runtime.tracking.queue = ReceiptQueue(sys.argv[1], stream=sys.argv[2], consumer="doomed")
    def killed(session, entries):
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: rows updated, events stored, nothing committed
    audit.record_many = killed
    runtime.tracking.drain()
    """)


def test_a_worker_killed_mid_group_leaves_it_pending_and_another_applies_it_once(
    queued: Tracked, redis_server: RedisServer
) -> None:
    sent(queued)
    queued.twilio.deliver()
    queue = queue_of(queued)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_DRAIN, redis_server.url, queue.stream],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert set(statuses(queued).values()) == {"sent"} and provider_events(queued) == 0
    assert queue.depth() == 6
    assert queued.runtime.tracking.drain().entries == 6  # taken over from the dead consumer
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")
    assert len(queued.events("delivery.delivered")) == 3 and queue.depth() == 0
    assert queued.chain_ok()


def test_without_redis_the_webhook_applies_the_receipt_itself(queued: Tracked) -> None:
    queued.runtime.tracking.queue = ReceiptQueue(f"redis://127.0.0.1:{free_port()}/0", stream="nowhere")
    sent(queued)
    assert queued.twilio.deliver() == [204] * 6
    assert statuses(queued) == dict.fromkeys(ONCALL, "delivered")  # applied in the request, as without a queue
    assert not queued.wakes  # type: ignore[attr-defined]
    assert len(queued.events("delivery.delivered")) == 3


def test_a_sendgrid_batch_goes_through_the_same_queue(queued: Tracked) -> None:
    queued.activate("sms-then-email")
    queued.drain()
    queued.twilio.outcomes.update({PHONES[p]: ("undelivered", 30003) for p in ONCALL})
    queued.twilio.deliver()
    queued.runtime.tracking.drain()  # the failed SMS fall back to email
    queued.drain()
    assert queued.sendgrid.sends
    events = queued.sendgrid.events("delivered") + queued.sendgrid.events("open")
    status, text = queued.sendgrid.post_events(EVENTS_URL, events)
    assert status == 202 and f'"queued":{len(events)}' in text.replace(" ", "")
    assert {r.status for r in queued.rows(channel="email")} == {"sent"}
    queued.runtime.tracking.drain()
    assert {r.status for r in queued.rows(channel="email")} == {"delivered"}
    assert queue_of(queued).depth() == 0


def test_a_vonage_dlr_goes_through_the_same_queue(dual: Dual, redis_server: RedisServer) -> None:  # noqa: F811
    queue = ReceiptQueue(redis_server.url, claim_after_s=0.0, stream=f"test:receipts:{uuid.uuid4().hex[:12]}")
    dual.runtime.tracking.queue = queue
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]  # every SMS goes by Vonage
    sent(dual)
    assert dual.fake.receipt(dual.vonage_message("alice"), "delivered")[0] == 204
    assert dual.fake.receipt(dual.vonage_message("bob"), "failed", err_code="9")[0] == 204
    assert queue.depth() == 2 and {dual.row("alice").status, dual.row("bob").status} == {"sent"}
    dual.runtime.tracking.drain()
    assert dual.row("alice").status == "delivered"
    row = dual.row("bob")
    assert (row.status, row.error_code) == ("failed", "vonage-dlr-9")
    assert queue.depth() == 0
    queue.close()
