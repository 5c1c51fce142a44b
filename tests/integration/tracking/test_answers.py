"""Answers across activations: one ACK counts for every open activation, operators answer for people, escalations pause.

Two outages at once (Exchange and Teams) page the same on-call people twice;
each of them answers once. Time moves with freezegun; the beat's follow-up is
called as beat calls it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from failover.models import Answer, EscalationTimer
from tests.conftest import AuthActions, csrf_from
from tests.integration.tracking.support import PHONES, TRACKED, Tracked

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
TEAMS = TRACKED.replace("id: tracked", "id: teams-tracked").replace("title: Email is down", "title: Teams is down")


def answers(tracked: Tracked) -> set[tuple[int, str, str, str]]:
    with tracked.runtime.database.reading() as session:
        return {(a.activation_id, a.person_id, a.answer, a.via) for a in session.scalars(select(Answer))}


def escalation_rows(tracked: Tracked) -> list[tuple[int, str, str]]:
    return [(r.activation_id, r.step, r.person_id) for r in tracked.rows() if r.step.startswith("escalation.")]


def operator(tracked: Tracked) -> AuthActions:
    actions = AuthActions(tracked.client, tracked.runtime)
    actions.login("operator", username="olga")
    return actions


def post_form(tracked: Tracked, activation_id: int, url: str, data: dict[str, str]) -> tuple[int, str]:
    token = csrf_from(tracked.client.get(f"/activations/{activation_id}").get_data(as_text=True))
    response = tracked.client.post(url, data={"csrf_token": token, **data})
    return response.status_code, response.get_data(as_text=True)


def test_one_ack_answers_every_open_activation_that_messaged_the_person(tracked: Tracked) -> None:
    (tracked.runtime.settings.runbooks_dir / "teams-tracked.yaml").write_text(TEAMS)
    with freeze_time(START) as clock:
        exchange = tracked.activate("tracked").activation_id
        teams = tracked.activate("teams-tracked").activation_id
        tracked.drain()
        tracked.twilio.deliver()
        status, twiml = tracked.reply("alice", "ACK")
        assert status == 200 and "Email is down" in twiml and "Teams is down" in twiml  # says which ones
        assert tracked.reply("bob", "ok")[0] == 200 and tracked.reply("heidi", "1")[0] == 200
        for _ in range(4):  # past every escalation entry (10, 20 and 30 minutes)
            clock.tick(dt.timedelta(minutes=10))
            tracked.follow_up()
    everyone = {(a, p, "ack", "sms") for a in (exchange, teams) for p in ("alice", "bob", "heidi")}
    assert answers(tracked) == everyone
    assert escalation_rows(tracked) == []  # nobody re-paged, in either activation
    assert PHONES["carol"] not in tracked.twilio.sent_to()  # and the leads were not told anyone is silent
    assert tracked.twilio.calls == []
    alice = [e.details for e in tracked.events("reply.acknowledged") if e.target_id == "alice"]
    assert alice == [{"activation": exchange, "via": "sms"}, {"activation": teams, "via": "sms"}]  # one per incident
    assert tracked.chain_ok()


def test_a_later_activation_still_escalates_to_whoever_has_not_answered_it(tracked: Tracked) -> None:
    (tracked.runtime.settings.runbooks_dir / "teams-tracked.yaml").write_text(TEAMS)
    with freeze_time(START) as clock:
        exchange = tracked.activate("tracked").activation_id
        tracked.drain()
        tracked.reply("alice", "ACK")  # answers Exchange, the only one open
        teams = tracked.activate("teams-tracked").activation_id  # a new alert she has not seen yet
        tracked.drain()
        clock.tick(dt.timedelta(minutes=10))
        tracked.follow_up()
    paged = {(a, p) for a, step, p in escalation_rows(tracked) if step == "escalation.0"}
    assert (teams, "alice") in paged and (exchange, "alice") not in paged


def test_an_operator_acknowledges_on_behalf_of_a_person_and_it_is_audited(tracked: Tracked) -> None:
    with freeze_time(START) as clock:
        activation = tracked.activate().activation_id
        tracked.drain()
        url = f"/activations/{activation}/acknowledge"
        viewer = AuthActions(tracked.client, tracked.runtime)
        viewer.login("viewer", username="vera")
        assert post_form(tracked, activation, url, {"person": "bob"})[0] == 403  # viewers may not
        viewer.logout()
        operator(tracked)
        page = tracked.client.get(f"/activations/{activation}").get_data(as_text=True)
        assert 'id="ack-on-behalf"' in page
        status, body = post_form(tracked, activation, url, {"person": "dan", "note": "phoned in"})
        assert status == 400 and "dan" in body  # this activation never messaged dan
        status, _ = post_form(tracked, activation, url, {"person": "bob", "note": "phoned the desk"})
        assert status == 302
        clock.tick(dt.timedelta(minutes=10))
        tracked.follow_up()
    assert answers(tracked) == {(activation, "bob", "ack", "console")}
    assert {p for _, step, p in escalation_rows(tracked) if step == "escalation.0"} == {"alice", "heidi"}
    (event,) = tracked.events("reply.acknowledged")
    assert (event.actor, event.target_id) == ("olga", "bob")
    assert event.details == {"activation": activation, "via": "console", "note": "phoned the desk"}


def test_a_paused_escalation_waits_until_resumed_and_a_cancelled_one_never_fires(tracked: Tracked) -> None:
    with freeze_time(START) as clock:
        activation = tracked.activate().activation_id
        tracked.drain()
        operator(tracked)
        url = f"/activations/{activation}/escalation"
        page = tracked.client.get(f"/activations/{activation}").get_data(as_text=True)
        assert 'id="escalation-controls"' in page
        assert post_form(tracked, activation, url, {"action": "pause"})[0] == 302
        clock.tick(dt.timedelta(minutes=15))
        tracked.follow_up()
        assert escalation_rows(tracked) == []  # entry 0 is due, but paused
        assert "paused" in tracked.client.get(f"/activations/{activation}").get_data(as_text=True)
        assert post_form(tracked, activation, url, {"action": "resume"})[0] == 302
        tracked.follow_up()
        assert {step for _, step, _ in escalation_rows(tracked)} == {"escalation.0"}  # overdue: fires now
        assert post_form(tracked, activation, url, {"action": "cancel"})[0] == 302
        assert post_form(tracked, activation, url, {"action": "resume"})[0] == 409  # cancelled is final
        clock.tick(dt.timedelta(hours=2))
        tracked.follow_up()
    assert {step for _, step, _ in escalation_rows(tracked)} == {"escalation.0"}
    with tracked.runtime.database.reading() as session:
        timers = [
            (t.entry, t.outcome) for t in session.scalars(select(EscalationTimer).order_by(EscalationTimer.entry))
        ]
    assert timers == [(0, "paged"), (1, "cancelled"), (2, "cancelled")]
    actions = [(e.action, e.actor) for e in tracked.events("escalation.paused") + tracked.events("escalation.resumed")]
    assert actions == [("escalation.paused", "olga"), ("escalation.resumed", "olga")]
    (cancelled,) = [e for e in tracked.events("escalation.cancelled") if e.actor == "olga"]
    assert cancelled.details["entries"] == [1, 2]
    assert tracked.chain_ok()
