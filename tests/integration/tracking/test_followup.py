"""Escalation timers and receipt-driven fallback, swept as beat sweeps them; time moved by freezegun."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from failover.engine import roster
from failover.models import EscalationTimer
from failover.runtime import Runtime
from tests.fakes import twilio as tw
from tests.integration.tracking.support import PHONES, Tracked

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)


def escalated(tracked: Tracked, entry: int) -> dict[str, str]:
    return {r.person_id: r.status for r in tracked.rows(step=f"escalation.{entry}")}


def timers(tracked: Tracked) -> list[tuple[int, str | None, int, int]]:
    with tracked.runtime.database.reading() as session:
        return [
            (t.entry, t.outcome, t.paged, t.limited)
            for t in session.scalars(select(EscalationTimer).order_by(EscalationTimer.entry))
        ]


def test_escalations_fire_when_due_once_each_and_only_for_the_silent(tracked: Tracked) -> None:
    with freeze_time(START) as clock:
        accepted = tracked.activate()
        tracked.drain()
        tracked.twilio.deliver()
        with tracked.runtime.database.reading() as session:
            due = [t.due_at for t in session.scalars(select(EscalationTimer).order_by(EscalationTimer.entry))]
        assert due == [START + dt.timedelta(minutes=m) for m in (10, 20, 30)]  # stored when accepted
        tracked.reply("alice", "ACK")

        clock.tick(dt.timedelta(minutes=9, seconds=59))
        tracked.follow_up()
        assert escalated(tracked, 0) == {}

        clock.tick(dt.timedelta(seconds=1))
        tracked.follow_up()
        assert escalated(tracked, 0) == {"bob": "sent", "heidi": "sent"}  # alice answered
        assert [m["body"] for m in tracked.twilio.messages[-2:]] == ["Reminder: reply ACK."] * 2
        tracked.follow_up()
        tracked.follow_up()
        assert len(tracked.rows(step="escalation.0")) == 2 and len(tracked.events("escalation.fired")) == 1

        tracked.reply("bob", "ok")
        clock.tick(dt.timedelta(minutes=10))
        tracked.follow_up()
        assert escalated(tracked, 1) == {"heidi": "sent"}  # the top step calls whoever is still silent
        (call,) = tracked.twilio.calls
        assert call["to"] == PHONES["heidi"] and "Email is down. Press 1." in call["_twiml"]

        clock.tick(dt.timedelta(minutes=10))
        tracked.follow_up()
        # The leads are told: carol was not asked, so she hears while heidi is silent; alice answered.
        assert escalated(tracked, 2) == {"carol": "sent"}
        assert timers(tracked) == [(0, "paged", 2, 0), (1, "paged", 1, 0), (2, "paged", 1, 0)]

    with tracked.runtime.database.reading() as session:
        data = roster.roster(session, accepted.activation_id, tracked.runtime.config.catalog())
    counts = {c["group"]: (c["acknowledged"], c["need_help"], c["no_answer"]) for c in data["counts"]}
    assert counts == {"(everyone)": (2, 0, 1), "oncall": (2, 0, 1), "it-leads": (1, 0, 0), "all-staff": (2, 0, 1)}
    assert tracked.chain_ok()


def test_the_repeat_limit_stops_a_paging_storm(tracked: Tracked) -> None:
    delivery = tracked.runtime.delivery
    delivery.settings = delivery.settings.model_copy(update={"escalation_limit": 1})
    with freeze_time(START) as clock:
        tracked.activate()
        tracked.drain()
        for _ in range(3):
            clock.tick(dt.timedelta(minutes=10))
            tracked.follow_up()
    assert escalated(tracked, 0) == {"alice": "sent", "bob": "sent", "heidi": "sent"}
    assert escalated(tracked, 1) == {"alice": "skipped", "bob": "skipped", "heidi": "skipped"}
    assert tracked.row("heidi", "voice").last_error == "escalation limit reached (1 per person per incident)"
    assert escalated(tracked, 2) == {"alice": "skipped", "carol": "sent"}  # carol had not been paged yet
    assert tracked.twilio.calls == []
    assert [e.details["limited"] for e in tracked.events("escalation.fired")] == [0, 3, 1]


def test_resolving_the_incident_cancels_pending_escalations(tracked: Tracked) -> None:
    with freeze_time(START) as clock:
        accepted = tracked.activate()
        tracked.drain()
        clock.tick(dt.timedelta(minutes=5))
        tracked.runtime.activations.resolve(incident_id=accepted.incident_id, actor="alice")
        tracked.drain()
        clock.tick(dt.timedelta(minutes=30))
        tracked.follow_up()
    assert tracked.rows(step="escalation.0") == []
    assert [t[1] for t in timers(tracked)] == ["cancelled"] * 3  # the all-clear scheduled none of its own
    assert {e.details["reason"] for e in tracked.events("escalation.cancelled")} == {"the incident is resolved"}


def test_escalation_timers_survive_a_restart(tracked: Tracked) -> None:
    with freeze_time(START) as clock:
        tracked.activate()
        tracked.drain()
        tracked.runtime.close()  # every process goes away; only the database remains
        clock.tick(dt.timedelta(minutes=10))
        revived = Runtime(tracked.runtime.settings)
        published: list[int] = []
        revived.relay.publisher = lambda batch_id, countdown: published.append(batch_id)
        try:
            revived.delivery.follow_up()
        finally:
            revived.close()
    assert escalated(tracked, 0) == {"alice": "pending", "bob": "pending", "heidi": "pending"} and published


def test_a_permanent_sms_failure_falls_back_to_email_within_one_sweep(tracked: Tracked) -> None:
    tracked.twilio.number_failures[PHONES["bob"]] = tw.Failure(400, 21211, "The 'To' number is not valid.")
    tracked.activate("sms-then-email")
    tracked.drain()
    sms = tracked.row("bob")
    assert (sms.status, sms.error_code) == ("failed", "21211") and tracked.rows(channel="email") == []
    tracked.follow_up()  # one sweep
    email = tracked.row("bob", "email")
    assert (email.step, email.status) == ("steps.0", "sent")
    (request,) = tracked.sendgrid.sends
    assert request["personalizations"][0]["to"] == [{"email": "bob@personal.example"}]
    assert request["content"][0]["value"] == "Your SMS did not arrive: email is down."
    (event,) = tracked.events("fallback.queued")
    assert event.details == {"person": "bob", "from": "sms", "to": "email", "code": "21211", "step": "steps.0"}
    tracked.follow_up()
    assert len(tracked.rows(channel="email")) == 1 and len(tracked.sendgrid.sends) == 1


def test_twilio_21610_records_an_opt_out_and_falls_back(tracked: Tracked) -> None:
    tracked.twilio.number_failures[PHONES["bob"]] = tw.Failure(400, 21610, "Attempt to send to unsubscribed recipient")
    tracked.activate("sms-then-email")
    tracked.drain()
    tracked.follow_up()
    assert tracked.row("bob", "email").status == "sent"
    (event,) = tracked.events("sms.opted_out")
    assert event.details["keyword"] == "21610"
    assert tracked.activate("sms-then-email").skipped == 1  # the next activation leaves bob's SMS out


def test_a_receipt_failure_falls_back_without_waiting_for_a_sweep(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["dan"]] = ("undelivered", 30003)
    tracked.activate("sms-then-email")
    tracked.drain()
    tracked.twilio.deliver()
    tracked.drain()
    assert tracked.row("dan", "email").status == "sent"


def test_no_fallback_for_someone_who_already_answered_or_has_nowhere_else(tracked: Tracked) -> None:
    tracked.twilio.outcomes[PHONES["bob"]] = ("undelivered", 30005)
    tracked.twilio.outcomes[PHONES["erin"]] = ("undelivered", 30006)
    tracked.activate("sms-then-email")
    tracked.drain()
    tracked.reply("bob", "ACK")  # the receipt is late; bob answered in between
    tracked.twilio.deliver()
    tracked.follow_up()
    assert [r.person_id for r in tracked.rows(channel="email")] == ["erin"]
    erin = tracked.row("erin", "email")
    assert (erin.status, erin.last_error) == ("skipped", "no email address")
    (exhausted,) = tracked.events("fallback.exhausted")
    assert exhausted.details["person"] == "erin"
    assert tracked.row("bob").followed_up_at is not None


def test_broken_config_files_delay_no_fallback(tracked: Tracked) -> None:
    tracked.twilio.number_failures[PHONES["bob"]] = tw.Failure(400, 21211, "The 'To' number is not valid.")
    tracked.activate("sms-then-email")
    tracked.drain()
    settings = tracked.runtime.settings
    (settings.runbooks_dir / "broken.yaml").write_text("id: [\n")  # a new file with a typo
    contacts = settings.config_dir / "contacts.yaml"
    contacts.write_text(contacts.read_text() + "  - {id: oops\n")  # and a bad edit of contacts.yaml
    tracked.follow_up()  # the last good contacts and every valid runbook stay in force
    assert tracked.row("bob", "email").status == "sent"
    assert {b.file.rsplit("/", 1)[-1] for b in tracked.runtime.config.report().broken} == {
        "broken.yaml",
        "contacts.yaml",
    }
