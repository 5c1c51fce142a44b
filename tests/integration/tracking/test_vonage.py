"""Vonage as the second SMS provider: the real vonage SDK against the TLS fake, failover from Twilio, and
Vonage's signed receipts and inbound messages through the Flask app (the same tracking and replies as Twilio's)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from failover.db import migrate
from failover.engine import reconcile
from failover.models import Answer, OptOut
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import AuthActions, provider_env, vonage_env
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw
from tests.fakes.tls import TestCA
from tests.fakes.vonage import FakeVonage, VonageFailure, vonage_signature
from tests.integration.tracking.support import PHONES, PUBLIC_URL, Tracked, tracking_config

pytestmark = pytest.mark.integration

VONAGE_STATUS = PUBLIC_URL + "/webhooks/vonage/status"
VONAGE_INBOUND = PUBLIC_URL + "/webhooks/vonage/inbound"
ONCALL = {"alice", "bob", "heidi"}


@dataclass
class Dual(Tracked):
    vonage: FakeVonage | None = None

    @property
    def fake(self) -> FakeVonage:
        assert self.vonage is not None
        return self.vonage

    def vonage_message(self, person: str) -> dict[str, object]:
        return [m for m in self.fake.messages if m["to"] == PHONES[person].lstrip("+")][-1]


@pytest.fixture
def fake_vonage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVonage]:
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))  # how the SDK's requests trust the fake
    with FakeVonage(ssl_context=ca.server_context()) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def dual(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_twilio: tw.FakeTwilio,
    fake_sendgrid: sg.FakeSendGrid,
    fake_vonage: FakeVonage,
) -> Iterator[Dual]:
    from failover.web import create_app

    config, books = tracking_config(tmp_path)
    values = {
        **provider_env(fake_twilio, fake_sendgrid),
        **vonage_env(fake_vonage),
        "FAILOVER_SMS_PROVIDERS": "twilio,vonage",
        "FAILOVER_BREAKER_THRESHOLD": "2",
        "FAILOVER_BREAKER_COOLDOWN": "600",
        "FAILOVER_SEND_CONCURRENCY": "1",  # one message after the other: when the breaker opens is known
        "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'dual.db'}",
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_PUBLIC_URL": PUBLIC_URL,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    app = create_app(runtime=runtime, test_config={"TESTING": True})
    client = app.test_client()
    AuthActions(client, runtime).login("viewer")
    fake_twilio.poster = tw.flask_poster(client)
    fake_vonage.poster = tw.flask_poster(client)
    wired = Dual(runtime, client, fake_twilio, fake_sendgrid, vonage=fake_vonage)
    runtime.relay.publisher = lambda batch_id, countdown: wired.published.append(batch_id)
    yield wired
    runtime.close()


def sent(dual: Dual, runbook: str = "tracked") -> int:
    accepted = dual.activate(runbook)
    dual.drain()
    return accepted.activation_id


# -- the SDK against the wire format ---------------------------------------------------------------


def test_with_twilio_healthy_vonage_is_not_used(dual: Dual) -> None:
    preview = dual.runtime.activations.preview(runbook_ids=["tracked"], reason="test", actor="alice")
    assert preview.runbooks[0].steps[0].transport == "twilio,vonage"  # shown as "via Twilio, then Vonage"
    sent(dual)
    assert set(dual.twilio.sent_to()) == {PHONES[p] for p in ONCALL} and not dual.fake.messages
    assert {r.transport for r in dual.rows(channel="sms")} == {"twilio"}


def test_twilio_503_moves_every_message_to_vonage_once(dual: Dual) -> None:
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]
    sent(dual)
    assert dual.fake.sent_to() == {PHONES[p]: 1 for p in ONCALL}
    assert not dual.twilio.messages
    rows = dual.rows(channel="sms")
    assert {(r.status, r.transport) for r in rows} == {("sent", "vonage")}
    assert {r.provider_id for r in rows} == {m["message-id"] for m in dual.fake.messages}
    # The wire format: digits only, our sender, the row in client-ref, receipts to our webhook.
    message = dual.vonage_message("alice")
    assert message["from"] == "447700900000" and message["callback"] == VONAGE_STATUS
    assert message["client-ref"] == str(dual.row("alice").id)
    details = [e.details for e in dual.events("delivery.sent")]
    assert all(d["transport"] == "vonage" and d["passed_over"] for d in details)
    # The first two 503s opened Twilio's breaker: the third message never asked Twilio.
    assert {d["passed_over"][0] for d in details} == {"twilio: 503", "twilio: circuit_open"}
    assert len(dual.twilio.requests("POST")) == 2
    assert dual.runtime.delivery.guard.circuits()["twilio"].open
    assert dual.chain_ok()
    # The console says who carried what, and how each provider is doing.
    dashboard = dual.client.get("/").get_data(as_text=True)
    assert "Twilio (DOWN: circuit open), then Vonage (up)" in dashboard
    page = dual.client.get(f"/activations/{dual.row('alice').activation_id}").get_data(as_text=True)
    assert "Vonage" in page


def test_a_suspended_twilio_account_fails_over_but_an_invalid_number_does_not(dual: Dual) -> None:
    dual.twilio.number_failures[PHONES["alice"]] = tw.Failure(401, 20003, "Authenticate")
    dual.twilio.number_failures[PHONES["bob"]] = tw.Failure(400, 21211, "The 'To' number is not valid.")
    sent(dual)
    assert dual.fake.sent_to() == {PHONES["alice"]: 1}  # bob's number is wrong everywhere: not retried
    assert dual.row("alice").transport == "vonage" and dual.row("alice").status == "sent"
    bob = dual.row("bob", step="steps.0")
    assert (bob.status, bob.error_code, bob.transport) == ("failed", "21211", "twilio")
    assert dual.row("heidi").transport == "twilio"


def test_a_ghost_500_is_reconciled_with_twilio_not_offered_to_vonage(dual: Dual) -> None:
    dual.twilio.number_failures[PHONES["alice"]] = tw.Failure(500, message="ghost", accept=True)
    sent(dual)
    alice = dual.row("alice")
    assert (alice.status, alice.transport) == ("in_doubt", "twilio")
    assert not dual.fake.messages
    reconcile.reconcile(
        dual.runtime.database, dual.runtime.delivery.channels, now=alice.updated_at + dt.timedelta(hours=1)
    )
    alice = dual.row("alice")
    assert alice.status == "sent" and alice.provider_id == dual.message_to("alice")["sid"]
    assert not dual.fake.messages and dual.twilio.sent_to()[PHONES["alice"]] == 1


@pytest.mark.parametrize(
    ("status", "row_status", "code"),
    [
        (3, "failed", "vonage-3"),  # invalid number: permanent, never retried
        (7, "failed", "vonage-7"),  # number barred
        (1, "pending", "vonage-1"),  # throttled: later, on the same policy
        (9, "failed", "vonage-9"),  # quota exceeded: Vonage's own refusal, and no provider is left
    ],
)
def test_vonage_per_message_status_codes(dual: Dual, status: int, row_status: str, code: str) -> None:
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]
    dual.fake.number_failures[PHONES["bob"]] = VonageFailure(status)
    sent(dual)
    bob = dual.row("bob", step="steps.0")
    assert (bob.status, bob.error_code, bob.transport) == (row_status, code, "vonage")
    assert "Vonage status" in (bob.last_error or "")
    assert PHONES["bob"] not in dual.fake.sent_to()
    assert dual.row("alice").status == "sent"


def test_an_unanswered_vonage_send_is_never_resent_the_fallback_takes_over(dual: Dual) -> None:
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]
    dual.fake.number_failures[PHONES["bob"]] = VonageFailure(http=500, accept=True)
    sent(dual)
    bob = dual.row("bob", step="steps.0")
    assert (bob.status, bob.transport) == ("in_doubt", "vonage")
    later = bob.updated_at + dt.timedelta(hours=1)
    reconcile.reconcile(
        dual.runtime.database, dual.runtime.delivery.channels, now=later, policy=dual.runtime.delivery.policy
    )
    bob = dual.row("bob", step="steps.0")
    assert bob.status == "failed" and "no message lookup" in (bob.last_error or "")
    assert dual.fake.sent_to()[PHONES["bob"]] == 1  # the one Vonage took, never a second


def test_both_providers_refusing_leaves_a_clear_error_per_row(dual: Dual) -> None:
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]
    dual.fake.chaos = [(1.0, VonageFailure(8))]
    sent(dual)
    rows = {person: dual.row(person, step="steps.0") for person in ONCALL}
    # Two refusals opened Vonage's breaker too: the third person waits on two open circuits.
    assert [(r.status, r.error_code) for r in rows.values()].count(("failed", "vonage-8")) == 2
    assert all("partner account barred" in (r.last_error or "") for r in rows.values() if r.status == "failed")
    (waiting,) = [r for r in rows.values() if r.status == "pending"]
    assert waiting.error_code == "circuit_open" and "vonage circuit open" in (waiting.last_error or "")
    dual.follow_up()  # ...and is handed to the step's fallback channel at once, like the others
    assert dual.row(waiting.person_id, step="steps.0").status == "failed"
    assert {r.person_id for r in dual.rows(channel="voice")} == ONCALL
    assert not dual.fake.messages and not dual.twilio.messages


# -- signed receipts and inbound messages ---------------------------------------------------------------


def vonage_first(dual: Dual) -> None:
    dual.twilio.chaos = [(1.0, tw.Failure(503, message="Service Unavailable"))]
    sent(dual)


def test_signed_receipts_feed_the_same_tracking(dual: Dual) -> None:
    vonage_first(dual)
    assert dual.fake.receipt(dual.vonage_message("alice"), "delivered")[0] == 204
    alice = dual.row("alice")
    assert (alice.status, alice.receipt, alice.provider_status) == ("delivered", "delivered", "delivered")
    assert dual.fake.receipt(dual.vonage_message("alice"), "delivered")[0] == 204  # a repeat changes nothing
    assert dual.fake.receipt(dual.vonage_message("bob"), "failed", err_code="6")[0] == 204
    bob = dual.row("bob", step="steps.0")
    assert (bob.status, bob.error_code) == ("failed", "vonage-dlr-6")
    assert "anti-spam" in (bob.last_error or "")
    assert len(dual.events("delivery.delivered")) == 1
    assert dual.chain_ok()


def test_receipts_as_get_and_json_are_read_the_same_way(dual: Dual) -> None:
    vonage_first(dual)
    message = dual.vonage_message("alice")
    params = {
        "msisdn": str(message["to"]),
        "messageId": str(message["message-id"]),
        "status": "delivered",
        "client-ref": str(message["client-ref"]),
        "err-code": "0",
    }
    answer = dual.client.get("/webhooks/vonage/status", query_string=dual.fake.signed(params))
    assert answer.status_code == 204 and dual.row("alice").status == "delivered"
    params = {**params, "messageId": str(dual.vonage_message("bob")["message-id"])}
    params["client-ref"] = str(dual.vonage_message("bob")["client-ref"])
    answer = dual.client.post("/webhooks/vonage/status", json=dual.fake.signed(params))
    assert answer.status_code == 204 and dual.row("bob").status == "delivered"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "unsigned Vonage webhook (no sig): turn on signed webhooks for the account"),
        ("forged", "Vonage signature (sig) does not match this request"),
        ("tampered", "Vonage signature (sig) does not match this request"),
        ("stale", "stale Vonage webhook"),
        ("no timestamp", "a signed Vonage webhook without a valid timestamp"),
    ],
)
def test_unsigned_or_forged_vonage_webhooks_are_refused_and_audited(dual: Dual, case: str, reason: str) -> None:
    vonage_first(dual)
    message = dual.vonage_message("alice")
    params = {"messageId": str(message["message-id"]), "status": "failed", "client-ref": str(message["client-ref"])}
    good = dual.fake.signed(params)
    forms = {
        "unsigned": params,
        "forged": {**good, "sig": vonage_signature("not-the-secret", good)},
        "tampered": {**good, "status": "delivered"},
        "stale": dual.fake.signed(params, timestamp=int(time.time()) - 3600),
        "no timestamp": {k: v for k, v in good.items() if k != "timestamp"},
    }
    answer = dual.client.post("/webhooks/vonage/status", data=forms[case])
    assert answer.status_code == 403 and reason in json.loads(answer.get_data())["error"]
    (event,) = dual.events("webhook.rejected")
    assert event.details["endpoint"] == "vonage/status" and reason in event.details["reason"]
    assert dual.row("alice").status == "sent"  # nothing changed
    assert dual.chain_ok()


def test_inbound_ack_over_vonage_acknowledges_and_is_answered_by_sms(dual: Dual) -> None:
    activation_id = sent(dual)
    status, _ = dual.fake.inbound(VONAGE_INBOUND, PHONES["alice"], "ACK")
    assert status == 204
    with dual.runtime.database.reading() as session:
        answers = session.scalars(select(Answer).where(Answer.activation_id == activation_id)).all()
    assert [(a.person_id, a.answer) for a in answers] == [("alice", "ack")]
    answer = dual.vonage_message("alice")  # the thanks go back over Vonage, which received the reply
    assert "Acknowledged" in str(answer["text"]) and not answer["client-ref"]


def test_stop_over_vonage_is_honoured_for_every_provider(dual: Dual) -> None:
    assert dual.fake.inbound(VONAGE_INBOUND, PHONES["bob"], "STOP")[0] == 204
    with dual.runtime.database.reading() as session:
        assert session.scalars(select(OptOut.phone)).all() == [PHONES["bob"]]
    assert not dual.fake.messages  # opt-outs are confirmed by the provider, not by us
    sent(dual)
    assert PHONES["bob"] not in dual.twilio.sent_to() and PHONES["bob"] not in dual.fake.sent_to()
    # A replayed inbound message is handled once.
    assert dual.fake.callbacks[0][2] == 204
    url, params, _ = dual.fake.callbacks[0]
    assert dual.fake.post(url, params)[0] == 204
    assert len(dual.events("reply.duplicate")) == 1
