"""Polls: numbered SMS answers tallied per group, exported, followed up to non-responders only, closed.

Signed inbound webhooks from the Twilio fake; beat's follow-up sweep is run
by hand with time moved by freezegun. Demo contacts: oncall = alice, bob,
heidi; it-leads = alice, carol.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import textwrap
from collections.abc import Iterator

import pytest
from freezegun import freeze_time

from failover.engine.replies import NOTHING_OPEN
from failover.errors import Conflict
from tests.conftest import AuthActions, csrf_from
from tests.integration.tracking.support import PHONES, Tracked

pytestmark = pytest.mark.integration
START = dt.datetime(2026, 3, 2, 9, 20, tzinfo=dt.UTC)
POLL = textwrap.dedent("""\
    id: poll
    title: How is everyone?
    trigger: {activation: manual}
    steps:
      - {channel: sms, to: [group:oncall, group:it-leads],
         poll: {question: "Email is down. How are you?", options: [working, cannot work, need help, customer impact]},
         follow_up: {after: 15m, to: unanswered}}
    """)
ASKED = "Email is down. How are you? Reply 1 working, 2 cannot work, 3 need help, 4 customer impact."


@pytest.fixture
def polled(tracked: Tracked) -> Iterator[Tracked]:
    (tracked.runtime.settings.runbooks_dir / "poll.yaml").write_text(POLL)
    with freeze_time(START) as clock:
        AuthActions(tracked.client, tracked.runtime).login("operator", username="olive")  # a session of START
        tracked.clock = clock  # type: ignore[attr-defined]
        yield tracked


def tally(tracked: Tracked, activation_id: int) -> dict[str, list[int]]:
    response = tracked.client.get(f"/activations/{activation_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Poll: Email is down. How are you?" in page
    from failover.engine import polls

    with tracked.runtime.database.reading() as session:
        [found] = polls.tallies(session, tracked.runtime.config.catalog(), activation_id)
    return found["groups"]


def test_answers_are_tallied_per_group_and_follow_up_reasks_only_the_silent(polled: Tracked) -> None:
    clock = polled.clock  # type: ignore[attr-defined]
    accepted = polled.activate("poll")
    polled.drain()
    asked = sorted(m["to"] for m in polled.twilio.messages if m["body"] == ASKED)
    assert asked == sorted(PHONES[p] for p in ("alice", "bob", "heidi", "carol"))

    assert "Thanks: you answered 2 (cannot work)" in polled.reply("alice", "2")[1]
    assert "Thanks: you answered 4 (customer impact)" in polled.reply("carol", "4 - shop till is down")[1]
    assert "Please answer with a number from 1 to 4" in polled.reply("bob", "7")[1]
    assert "Thanks: you answered 1 (working)" in polled.reply("alice", "1")[1]  # changed her mind: latest counts
    groups = tally(polled, accepted.activation_id)
    assert groups["(everyone)"] == [1, 0, 0, 1, 2]  # working, cannot, help, impact, no answer
    assert groups["oncall"] == [1, 0, 0, 0, 2]
    assert groups["it-leads"] == [1, 0, 0, 1, 0]

    clock.tick(dt.timedelta(minutes=15))
    polled.follow_up()
    reminders = sorted(m["to"] for m in polled.twilio.messages if m["body"] == "Reminder: " + ASKED)
    assert reminders == sorted([PHONES["bob"], PHONES["heidi"]])  # never alice or carol, who answered

    csv_text = polled.client.get(f"/activations/{accepted.activation_id}/polls/steps.0.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(csv_text)))
    by_person = {r[0]: (r[3], r[4]) for r in rows[2:]}
    assert rows[0] == ["question", "Email is down. How are you?"]
    assert by_person == {
        "alice": ("1", "working"),
        "bob": ("", ""),
        "carol": ("4", "customer impact"),
        "heidi": ("", ""),
    }
    assert polled.chain_ok()
    assert "Email is down" not in str([e.details for e in polled.events("poll.answered")])  # no texts audited


def test_answers_to_a_closed_poll_get_a_clear_reply_and_change_nothing(polled: Tracked) -> None:
    accepted = polled.activate("poll")
    polled.drain()
    polled.reply("heidi", "3")
    polled.runtime.activations.resolve(incident_id=accepted.incident_id, actor="alice", note="over")
    answer = polled.reply("heidi", "1")[1]
    assert "that poll has closed" in answer
    assert tally(polled, accepted.activation_id)["(everyone)"] == [0, 0, 1, 0, 3]
    assert len(polled.events("poll.closed_answer")) == 1
    assert NOTHING_OPEN in polled.reply("grace", "1")[1]  # never asked a poll: a plain ACK
    polled.activate("tracked")  # a new alert without a poll: heidi's "1" acknowledges it, poll or no poll
    polled.drain()
    assert "Acknowledged, thank you: Email is down" in polled.reply("heidi", "1")[1]


def test_an_operator_closes_a_poll(polled: Tracked) -> None:
    from failover.engine import polls

    accepted = polled.activate("poll")
    polled.drain()
    page = polled.client.get(f"/activations/{accepted.activation_id}").get_data(as_text=True)
    token = csrf_from(page)
    response = polled.client.post(
        f"/activations/{accepted.activation_id}/polls/steps.0/close", data={"csrf_token": token}
    )
    assert response.status_code == 302
    assert "that poll has closed" in polled.reply("bob", "1")[1]
    assert [e.actor for e in polled.events("poll.closed")] == ["olive"]
    with polled.runtime.database.transaction() as session, pytest.raises(Conflict):
        polls.close(
            session,
            activation_id=accepted.activation_id,
            step="steps.0",
            actor="olive",
            now=START,
            catalog=polled.runtime.config.catalog(),
        )
