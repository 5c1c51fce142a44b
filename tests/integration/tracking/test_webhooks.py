"""Provider webhooks end to end through the Flask app: signed as the providers sign, or refused and audited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from failover.models import Answer, AuditEvent, OptOut, ProviderEvent
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw
from tests.integration.tracking.support import EVENTS_URL, INBOUND_URL, PHONES, PUBLIC_URL, STATUS_URL, Tracked

pytestmark = pytest.mark.integration


def sent(tracked: Tracked, runbook: str = "tracked", **kwargs: Any) -> int:
    accepted = tracked.activate(runbook, **kwargs)
    tracked.drain()
    return accepted.activation_id


# -- Twilio status callbacks ------------------------------------------------------------------


def test_signed_receipts_mark_rows_delivered_and_late_ones_never_downgrade(tracked: Tracked) -> None:
    sent(tracked)
    assert {r.status for r in tracked.rows(channel="sms")} == {"sent"}
    assert tracked.twilio.deliver() == [204] * 6  # sent + delivered for alice, bob, heidi
    row = tracked.row("alice")
    assert (row.status, row.receipt, row.provider_status) == ("delivered", "delivered", "delivered")
    assert row.delivered_at is not None and row.error_code is None
    # Twilio repeats itself, and a "sent" may arrive after "delivered": neither changes anything.
    message = tracked.message_to("alice")
    for status in ("sent", "delivered", "queued"):
        answer = tracked.twilio.post_signed(message["_status_callback"], tracked.twilio.receipt_form(message, status))
        assert answer[0] == 204
    assert tracked.row("alice").status == "delivered"
    assert len(tracked.events("delivery.delivered")) == 3  # one per row, however many callbacks
    assert tracked.chain_ok()


def test_receipts_out_of_order(tracked: Tracked) -> None:
    sent(tracked)
    tracked.twilio.deliver(reverse=True)  # delivered first, then sent
    assert {r.status for r in tracked.rows(channel="sms")} == {"delivered"}


def test_an_undelivered_receipt_records_the_error_and_calls_at_once(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["bob"]] = ("undelivered", 30006)
    sent(tracked)
    tracked.twilio.deliver()
    row = tracked.row("bob")
    assert (row.status, row.error_code, row.provider_status) == ("failed", "30006", "undelivered")
    assert "landline" in (row.last_error or "")
    (event,) = tracked.events("delivery.undelivered")
    assert event.details["code"] == "30006" and event.target_id == str(row.id)
    # The next channel of the step (voice) was queued in the receipt's own transaction, no timer needed.
    assert [e.details["to"] for e in tracked.events("fallback.queued")] == ["voice"]
    tracked.drain()
    (call,) = tracked.twilio.calls
    assert call["to"] == PHONES["bob"] and call["from"] == "+12025550100"
    voice = tracked.row("bob", "voice")
    assert "<Say>Email is down. Reply ACK.</Say>" in call["_twiml"]
    assert tracked.twilio.gather_action(call["sid"]) == f"{PUBLIC_URL}/webhooks/twilio/voice?delivery={voice.id}"
    assert call["_status_callback"] == f"{STATUS_URL}?delivery={voice.id}"
    assert call["_events"] == ["initiated", "ringing", "answered", "completed"]


def test_pressing_1_on_a_voice_alert_acknowledges(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["bob"]] = ("failed", 30003)
    activation_id = sent(tracked)
    tracked.twilio.deliver()
    tracked.drain()
    (call,) = tracked.twilio.calls
    assert tracked.twilio.call_progress(call["sid"], "initiated", "ringing", "in-progress") == [204] * 3
    assert tracked.row("bob", "voice").status == "delivered"  # answered
    status, twiml = tracked.twilio.press(call["sid"], "9")
    assert status == 200 and "That was not 1" in twiml and "<Gather" in twiml
    status, twiml = tracked.twilio.press(call["sid"], "1")
    assert status == 200 and "acknowledgement is recorded" in twiml
    with tracked.runtime.database.reading() as session:
        answer = session.scalars(select(Answer).where(Answer.person_id == "bob")).one()
    assert (answer.activation_id, answer.answer, answer.via) == (activation_id, "ack", "voice")
    tracked.twilio.call_progress(call["sid"], "completed")
    assert tracked.row("bob", "voice").status == "delivered"


def test_an_unanswered_call_moves_on_to_email(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["bob"]] = ("undelivered", 30005)
    sent(tracked)
    tracked.twilio.deliver()
    tracked.drain()
    (call,) = tracked.twilio.calls
    tracked.twilio.call_progress(call["sid"], "initiated", "ringing", "no-answer")
    row = tracked.row("bob", "voice")
    assert (row.status, row.error_code) == ("failed", "no-answer")
    tracked.drain()
    (email,) = tracked.sendgrid.sends
    assert email["personalizations"][0]["to"] == [{"email": "bob@personal.example"}]
    assert email["subject"] == "Email is down"


def test_a_receipt_settles_an_in_doubt_row_so_it_is_never_sent_twice(tracked: Tracked) -> None:
    # Twilio took the message but the answer was lost (a 500 after acceptance): the row is in doubt.
    tracked.twilio.number_failures[PHONES["alice"]] = tw.Failure(500, None, "lost", accept=True)
    sent(tracked)
    assert tracked.row("alice").status == "in_doubt"
    tracked.twilio.deliver(only=PHONES["alice"])
    row = tracked.row("alice")
    assert (row.status, row.provider_id) == ("delivered", tracked.message_to("alice")["sid"])
    (reconciled,) = tracked.events("delivery.reconciled")  # the "sent" receipt settled it
    assert reconciled.details["via"] == "receipt" and reconciled.details["was"] == "in_doubt"
    tracked.runtime.delivery.sweep()
    tracked.drain()
    assert tracked.twilio.sent_to()[PHONES["alice"]] == 1


def test_a_receipt_for_a_row_still_being_sent_waits_for_the_dispatcher(tracked: Tracked) -> None:
    from failover.clock import utcnow
    from failover.engine import dispatch

    tracked.activate()
    batch = tracked.published.pop(0)
    with tracked.runtime.database.transaction() as session:
        dispatch._claim(session, batch, utcnow())  # a worker holds the rows and has not recorded yet
    row = tracked.row("alice")
    sid = "SM" + "a" * 32
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": tracked.twilio.account_sid, "To": "x"}
    assert tracked.twilio.post_signed(f"{STATUS_URL}?delivery={row.id}", form)[0] == 204
    row = tracked.row("alice")
    assert (row.status, row.receipt) == ("sending", None)
    # The dispatcher records its answer; the next follow-up sweep applies the receipt on top of it.
    with tracked.runtime.database.transaction() as session:
        session.get_one(type(row), row.id).status = "sent"
        session.get_one(type(row), row.id).provider_id = sid
    tracked.follow_up()
    assert tracked.row("alice").status == "delivered"
    with tracked.runtime.database.reading() as session:
        assert session.scalar(select(func.count()).where(ProviderEvent.applied_at.is_(None))) == 0


def test_a_signed_receipt_for_an_unknown_delivery_is_acknowledged_and_audited(tracked: Tracked) -> None:
    form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered", "AccountSid": tracked.twilio.account_sid}
    assert tracked.twilio.post_signed(f"{STATUS_URL}?delivery=999", form)[0] == 204
    assert len(tracked.events("receipt.unknown_delivery")) == 1


def _forgeries(tracked: Tracked) -> dict[str, Callable[[], tuple[int, str]]]:
    """Each way a status callback can be wrong, as (what, how to send it)."""
    twilio = tracked.twilio
    alice, bob = tracked.row("alice"), tracked.row("bob")
    message = tracked.message_to("alice")
    url = f"{STATUS_URL}?delivery={alice.id}"
    form = twilio.receipt_form(message, "delivered")
    good = tw.twilio_signature(twilio.auth_token, url, form)

    def post(target: str, data: dict[str, str], signature: str | None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        sent_headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        response = tracked.client.post(target.removeprefix(PUBLIC_URL), data=data, headers=sent_headers)
        return response.status_code, response.get_data(as_text=True)

    elsewhere = url.replace(PUBLIC_URL, "https://elsewhere.example")
    return {
        "missing": lambda: post(url, form, None),
        "forged": lambda: post(url, form, tw.twilio_signature("not-the-token", url, form)),
        "truncated signature": lambda: post(url, form, good[:-6]),
        "truncated body": lambda: post(url, {k: v for k, v in form.items() if k != "To"}, good),
        "tampered status": lambda: post(url, {**form, "MessageStatus": "failed"}, good),
        "replayed to another delivery": lambda: post(f"{STATUS_URL}?delivery={bob.id}", form, good),
        "signed for another host": lambda: post(url, form, tw.twilio_signature(twilio.auth_token, elsewhere, form)),
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing X-Twilio-Signature header"),
        ("forged", "X-Twilio-Signature does not match this request"),
        ("truncated signature", "X-Twilio-Signature does not match this request"),
        ("truncated body", "X-Twilio-Signature does not match this request"),
        ("tampered status", "X-Twilio-Signature does not match this request"),
        ("replayed to another delivery", "X-Twilio-Signature does not match this request"),
        ("signed for another host", "X-Twilio-Signature does not match this request"),
    ],
)
def test_bad_twilio_signatures_are_refused_and_audited(tracked: Tracked, case: str, reason: str) -> None:
    sent(tracked)
    status, body = _forgeries(tracked)[case]()
    assert status == 403 and json.loads(body) == {"error": reason, "status": 403}
    (event,) = tracked.events("webhook.rejected")
    assert event.details == {
        "endpoint": "twilio/status",
        "reason": reason,
        "status": 403,
        "remote": "127.0.0.1",
        "sampling": "first of its 5-minute window; later ones are counted",
    }
    assert {r.status for r in tracked.rows(channel="sms")} == {"sent"}  # nothing changed
    assert tracked.chain_ok()


def test_a_proxy_that_public_url_does_not_describe_gets_a_clear_hint(tracked: Tracked) -> None:
    sent(tracked)
    row, message = tracked.row("alice"), tracked.message_to("alice")
    form = tracked.twilio.receipt_form(message, "delivered")
    seen = f"http://localhost/webhooks/twilio/status?delivery={row.id}"  # what the test client's request looks like
    response = tracked.client.post(
        f"/webhooks/twilio/status?delivery={row.id}",
        data=form,
        headers={"X-Twilio-Signature": tw.twilio_signature(tracked.twilio.auth_token, seen, form)},
    )
    assert response.status_code == 403 and "set FAILOVER_PUBLIC_URL" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("query", "form", "reason"),
    [
        ("", {"MessageSid": "SM" + "c" * 32, "MessageStatus": "sent"}, "the callback URL names no delivery"),
        ("?delivery=abc", {"MessageSid": "SM" + "c" * 32, "MessageStatus": "sent"}, "names no delivery"),
        ("?delivery=1", {"MessageSid": "nonsense", "MessageStatus": "sent"}, "MessageSid is missing or malformed"),
        ("?delivery=1", {"MessageSid": "SM" + "c" * 32}, "the callback carries no status"),
        ("?delivery=1", {"Foo": "bar"}, "neither MessageSid nor CallSid"),
    ],
)
def test_signed_but_malformed_callbacks_are_a_400(
    tracked: Tracked, query: str, form: dict[str, str], reason: str
) -> None:
    status, body = tracked.twilio.post_signed(STATUS_URL + query, form)
    assert status == 400 and reason in json.loads(body)["error"]
    (event,) = tracked.events("webhook.rejected")
    assert event.details["status"] == 400


def test_twilio_webhooks_are_refused_when_twilio_is_not_configured(client: Any, runtime: Any) -> None:
    form = {"MessageSid": "SM" + "d" * 32, "From": "+12025550101", "Body": "ACK"}
    response = client.post("/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 403 and "TWILIO_AUTH_TOKEN is not set" in response.get_json()["error"]


# -- SendGrid events ---------------------------------------------------------------------------


def test_signed_sendgrid_events_track_email(tracked: Tracked) -> None:
    sent(tracked, "exchange-outage")
    emails = tracked.rows(channel="email")
    assert len(emails) == 8 and {r.status for r in emails} == {"sent", "skipped"}  # erin has no address
    sendgrid = tracked.sendgrid
    events = (
        sendgrid.events("processed")
        + sendgrid.events("deferred", to="bob@personal.example")
        + sendgrid.events("delivered")
        + sendgrid.events("open", to="alice@personal.example")
    )
    status, body = sendgrid.post_events(EVENTS_URL, events)
    assert status == 200 and json.loads(body) == {"received": 16, "applied": 15, "duplicates": 0, "ignored": 1}
    assert {r.status for r in tracked.rows(channel="email") if r.status != "skipped"} == {"delivered"}
    # SendGrid retries a batch it thinks failed: the same sg_event_ids change nothing.
    status, body = sendgrid.post_events(EVENTS_URL, events)
    assert json.loads(body)["duplicates"] == 15
    assert len(tracked.events("delivery.delivered")) == 7


def test_bounces_and_drops_fail_the_row_with_the_reason(tracked: Tracked) -> None:
    sent(tracked, "exchange-outage")
    sendgrid = tracked.sendgrid
    bounced = sendgrid.events("bounce", to="bob@personal.example")
    sendgrid.post_events(EVENTS_URL, bounced + sendgrid.events("dropped", to="dan@personal.example"))
    bob, dan = tracked.row("bob", "email"), tracked.row("dan", "email")
    assert (bob.status, bob.error_code, dan.status, dan.error_code) == ("failed", "bounce 5.1.1", "failed", "dropped")
    assert "b***@personal.example" in (bob.last_error or "") and "bob@personal" not in (bob.last_error or "")
    assert tracked.chain_ok()


def _sendgrid_cases(tracked: Tracked) -> dict[str, Callable[[], tuple[int, str]]]:
    sendgrid = tracked.sendgrid
    events = sendgrid.events("delivered")
    body = json.dumps(events).encode()
    now = str(int(time.time()))
    good = sendgrid.sign(body, now)
    other = sg.FakeSendGrid()  # another key pair: a forger's

    def post(raw: bytes, **kwargs: Any) -> tuple[int, str]:
        return sendgrid.post_events(EVENTS_URL, [], body=raw, **kwargs)

    return {
        "missing signature": lambda: post(body, headers={sg.SIGNATURE_HEADER: None}),
        "missing timestamp": lambda: post(body, timestamp=now, signature=good, headers={sg.TIMESTAMP_HEADER: None}),
        "forged": lambda: post(body, timestamp=now, signature=other.sign(body, now)),
        "truncated signature": lambda: post(body, timestamp=now, signature=good[:-8]),
        "not base64": lambda: post(body, timestamp=now, signature="%%%"),
        "tampered body": lambda: post(body.replace(b"delivered", b"bounce"), timestamp=now, signature=good),
        "truncated body": lambda: post(body[:-10], timestamp=now, signature=good),
        "replayed": lambda: post(body, timestamp=str(int(time.time()) - 3600)),
        "from the future": lambda: post(body, timestamp=str(int(time.time()) + 3600)),
        "timestamp swapped": lambda: post(body, timestamp=str(int(now) - 1), signature=good),
        "not a number": lambda: post(body, timestamp="yesterday"),
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing signature", "missing X-Twilio-Email-Event-Webhook-Signature"),
        ("missing timestamp", "Webhook-Signature or X-Twilio-Email-Event-Webhook-Timestamp header"),
        ("forged", "does not match the body and timestamp"),
        ("truncated signature", "does not match the body and timestamp"),
        ("not base64", "does not match the body and timestamp"),
        ("tampered body", "does not match the body and timestamp"),
        ("truncated body", "does not match the body and timestamp"),
        ("replayed", "outside the 600 s window (a replay?)"),
        ("from the future", "is in the future"),
        ("timestamp swapped", "does not match the body and timestamp"),
        ("not a number", "is not a Unix time"),
    ],
)
def test_bad_sendgrid_signatures_are_refused_and_audited(tracked: Tracked, case: str, reason: str) -> None:
    sent(tracked, "exchange-outage")
    status, body = _sendgrid_cases(tracked)[case]()
    assert status == 403 and reason in json.loads(body)["error"]
    (event,) = tracked.events("webhook.rejected")
    assert event.details["endpoint"] == "sendgrid/events" and reason in event.details["reason"]
    assert {r.status for r in tracked.rows(channel="email")} == {"sent", "skipped"}


def test_a_signed_body_that_is_not_events_is_a_400(tracked: Tracked) -> None:
    for raw, reason in ((b"{not json", "not JSON"), (b'{"event": "delivered"}', "expected a JSON array")):
        status, body = tracked.sendgrid.post_events(EVENTS_URL, [], body=raw)
        assert status == 400 and reason in json.loads(body)["error"]
    assert len(tracked.events("webhook.rejected")) == 1  # the second, same endpoint and status, is counted


def test_sendgrid_events_are_refused_without_a_verification_key(tracked: Tracked) -> None:
    tracking = tracked.runtime.tracking
    tracking.__dict__.pop("sendgrid_verifier", None)
    tracking.settings = tracking.settings.model_copy(update={"sendgrid_webhook_public_key": None})
    status, body = tracked.sendgrid.post_events(EVENTS_URL, tracked.sendgrid.events())
    assert status == 403 and "SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in json.loads(body)["error"]


# -- inbound SMS --------------------------------------------------------------------------------


def test_ack_acknowledges_every_open_activation_that_messaged_the_sender(tracked: Tracked) -> None:
    older = sent(tracked, "sms-then-email")
    newer = sent(tracked)
    check_in = sent(tracked, "check-in")  # all-staff: "ACK" there means "I can work"
    status, twiml = tracked.reply("bob", "ack")
    assert status == 200 and twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acknowledged, thank you: SMS, else email; '
        "Email is down; Staff check-in</Message></Response>"
    )
    with tracked.runtime.database.reading() as session:
        answers = [
            (a.activation_id, a.person_id, a.answer) for a in session.scalars(select(Answer).order_by(Answer.id))
        ]
    assert answers == [(older, "bob", "ack"), (newer, "bob", "ack"), (check_in, "bob", "ack")]
    events = tracked.events("reply.acknowledged")
    assert [(e.target_id, e.details["activation"]) for e in events] == [
        ("bob", older),
        ("bob", newer),
        ("bob", check_in),
    ]


def test_a_replayed_inbound_message_is_handled_once(tracked: Tracked) -> None:
    sent(tracked)
    form = tracked.twilio.inbound_form(PHONES["bob"], "STOP", "+12025550100")
    tracked.twilio.post_signed(INBOUND_URL, form)
    tracked.twilio.post_signed(INBOUND_URL, tracked.twilio.inbound_form(PHONES["bob"], "START", "+12025550100"))
    status, twiml = tracked.twilio.post_signed(INBOUND_URL, form)  # an old, validly signed STOP again
    assert status == 200 and "<Message>" not in twiml
    with tracked.runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(OptOut)) == 0
    assert len(tracked.events("reply.duplicate")) == 1


def test_two_means_need_help_in_a_check_in_and_nothing_elsewhere(tracked: Tracked) -> None:
    sent(tracked)
    status, twiml = tracked.reply("bob", "2")
    assert "Reply ACK (or 1)" in twiml  # not a check-in: a help text, no answer recorded
    activation = sent(tracked, "check-in")
    status, twiml = tracked.reply("dan", "2 - no car")
    assert "Someone will contact you" in twiml
    tracked.reply("grace", "1")
    with tracked.runtime.database.reading() as session:
        query = select(Answer).where(Answer.activation_id == activation)
        answers = {(a.person_id, a.answer) for a in session.scalars(query)}
    assert answers == {("dan", "need_help"), ("grace", "ack")}


def test_stop_is_honoured_by_every_later_send_and_start_clears_it(tracked: Tracked) -> None:
    tracked.activate()  # queued, not sent yet
    status, twiml = tracked.reply("bob", "STOP")
    assert status == 200 and twiml == '<?xml version="1.0" encoding="UTF-8"?><Response />'  # Twilio confirms STOP
    assert tracked.row("bob").status == "cancelled"  # the waiting SMS does not go out
    tracked.drain()
    assert PHONES["bob"] not in tracked.twilio.sent_to()
    (event,) = tracked.events("sms.opted_out")
    assert event.target_id == "bob" and event.details == {"keyword": "STOP", "sender": None, "cancelled": 1}
    # The next activation skips bob's SMS, with the reason on the preview and the ledger.
    preview = tracked.runtime.activations.preview(runbook_ids=["check-in"], reason="x", actor="alice")
    assert ("bob", "opted out of SMS (replied STOP)") in {(s.person_id, s.reason) for s in preview.skipped}
    accepted = tracked.activate("check-in")
    assert tracked.row("bob").status == "skipped" and accepted.counts == {"sms": 6}
    tracked.reply("bob", "start")
    assert tracked.activate("sms-then-email").counts == {"sms": 5}  # oncall + service-desk, bob back in
    assert len(tracked.events("sms.opted_in")) == 1


def test_yes_from_someone_who_never_opted_out_acknowledges(tracked: Tracked) -> None:
    sent(tracked)
    status, twiml = tracked.reply("heidi", "Yes")
    assert "Acknowledged" in twiml and len(tracked.events("reply.acknowledged")) == 1


def test_anything_else_gets_a_short_help_text_within_a_limit(tracked: Tracked) -> None:
    sent(tracked)
    answers = [tracked.reply("alice", "what is going on?")[1] for _ in range(7)]
    assert ["Reply ACK (or 1)" in a for a in answers] == [True] * 5 + [False] * 2  # FAILOVER_REPLY_LIMIT=5 an hour
    assert len(tracked.events("reply.unrecognised")) == 7 and len(tracked.events("reply.rate_limited")) == 1


def test_unknown_numbers_are_rate_limited_and_audited_masked(tracked: Tracked) -> None:
    from freezegun import freeze_time

    stranger = "+14155550123"
    with freeze_time("2026-11-28 09:00:00") as clock:
        answers = [tracked.twilio.send_inbound(INBOUND_URL, stranger, "hello?")[1] for _ in range(8)]
        assert ["cannot read replies" in a for a in answers] == [True] * 5 + [False] * 3
        events = tracked.events("reply.unknown_sender")
        assert len(events) == 5 and events[0].details == {"sender": "+1********23", "kind": "other"}
        (limited,) = tracked.events("reply.rate_limited")
        assert limited.details == {"sender": "+1********23", "scope": "number"}
        clock.tick(3601)
        assert "cannot read replies" in tracked.twilio.send_inbound(INBOUND_URL, stranger, "hello?")[1]


def test_no_contact_data_or_reply_text_reaches_the_audit_log(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["heidi"]] = ("undelivered", 30003)
    sent(tracked)
    tracked.twilio.deliver()
    tracked.drain()
    tracked.reply("alice", "ACK secret-word")
    tracked.reply("bob", "STOP")
    tracked.twilio.send_inbound(INBOUND_URL, "+14155550123", "secret-word")
    with tracked.runtime.database.reading() as session:
        dumped = json.dumps([e.details for e in session.scalars(select(AuditEvent))])
    assert "secret-word" not in dumped and "+1202555" not in dumped and "+1415555" not in dumped
    assert "@personal.example" not in dumped.replace("***@personal.example", "")


# -- the activation page ------------------------------------------------------------------------


def test_the_activation_page_shows_who_was_reached_and_who_answered(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["heidi"]] = ("undelivered", 30003)
    activation = sent(tracked, "check-in")
    tracked.twilio.deliver()
    tracked.reply("alice", "1")
    tracked.reply("dan", "2")
    page = tracked.client.get(f"/activations/{activation}").get_data(as_text=True)
    assert 'id="people-heading">People<' in page and "Export everyone (CSV)" in page
    assert '<tr data-person="alice">' in page and ">acknowledged</span>" in page and ">needs help</span>" in page
    assert "Step 1 · SMS to all-staff</span>" in page and ">failed 30003</span>" in page and "+1202555" not in page
    data = tracked.client.get(f"/activations/{activation}/roster.json").get_json()
    counts = {c["group"]: (c["acknowledged"], c["need_help"], c["no_answer"]) for c in data["counts"]}
    assert counts["(everyone)"] == (1, 1, 5) and counts["service-desk"] == (0, 1, 1) and data["check_in"]
    people = {p["person"]: (p["reached"], p["answer"]) for p in data["people"]}
    assert people["alice"] == (True, "ack") and people["heidi"] == (False, None) and people["grace"] == (True, None)
    assert people["frank"] == (False, None)  # no phone: skipped, so not counted
    csv = tracked.client.get(f"/activations/{activation}/roster.csv")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0] == "person,name,groups,asked,reached,answer,answered_via,answered_at,channels"
    assert any(line.startswith("dan,Dan Example,service-desk all-staff,yes,yes,need help,sms,") for line in lines)
    assert "+1202555" not in csv.get_data(as_text=True)
