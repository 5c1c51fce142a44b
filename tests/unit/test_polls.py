"""Polls, the pure part: numbered answers, tallies, the step's validation and its follow-up entry."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from failover.domain.polls import Answer, csv_text, parse_choice, tally
from failover.domain.runbooks import Runbook

OPTIONS = ("working", "cannot work", "need help")


@pytest.mark.parametrize(
    ("body", "choice"), [("2", 2), (" 3 ", 3), ("#1", 1), ("2 - stuck at home", 2), ("１", 1), ("9", 9)]
)
def test_numbered_answers(body: str, choice: int) -> None:
    assert parse_choice(body) == choice


@pytest.mark.parametrize("body", ["", "0", "12", "123456", "ACK", "two", "-1", None])
def test_not_an_answer(body: str | None) -> None:
    assert parse_choice(body) is None


def test_tally_per_group_with_the_unanswered_last() -> None:
    groups = {"ann": ("oncall",), "bo": ("oncall", "leads"), "cy": ("leads",), "di": ()}
    answers = [Answer("ann", 1), Answer("cy", 3), Answer("zed", 2), Answer("bo", 7)]  # zed was not asked; 7 no option
    result = tally(OPTIONS, ["ann", "bo", "cy", "di"], answers, groups)
    assert result.groups == {"(everyone)": [1, 0, 1, 2], "oncall": [1, 0, 0, 1], "leads": [0, 0, 1, 1]}
    assert (result.answered, result.asked) == (2, 4)


def test_csv_quotes_cells_a_spreadsheet_would_run() -> None:
    text = csv_text("Q?", OPTIONS, [("p1", "=HYPERLINK(1)", "oncall", 2, "2026-03-02T09:30:00+00:00")])
    assert "'=HYPERLINK(1)" in text and "cannot work" in text


def book(step: dict[str, object]) -> Runbook:
    return Runbook.model_validate({"id": "p", "title": "P", "steps": [step]})


def test_a_poll_step_asks_its_question_and_follows_up_as_an_escalation() -> None:
    runbook = book(
        {
            "channel": "sms",
            "to": ["group:oncall"],
            "poll": {"question": "How are you?", "options": list(OPTIONS)},
            "follow_up": {"after": "15m", "to": "unanswered"},
        }
    )
    assert runbook.steps[0].text == "How are you? Reply 1 working, 2 cannot work, 3 need help."
    [entry] = runbook.escalation
    assert (entry.after, entry.if_, entry.to) == (dt.timedelta(minutes=15), "unacknowledged", ("group:oncall",))
    assert entry.text == "Reminder: How are you? Reply 1 working, 2 cannot work, 3 need help."
    assert set(runbook.polls) == {"steps.0"}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"channel": "email", "to": ["x"], "subject": "s", "poll": {"question": "q", "options": ["a", "b"]}}, "by SMS"),
        ({"channel": "sms", "to": ["x"], "poll": {"question": "q", "options": ["a"]}}, "at least 2"),
        ({"channel": "sms", "to": ["x"], "poll": {"question": "q", "options": ["a", "A"]}}, "must differ"),
        ({"channel": "sms", "to": ["x"], "text": "t", "follow_up": {"after": "15m"}}, "belongs to a poll"),
        (
            {
                "channel": "sms",
                "to": ["x"],
                "poll": {"question": "q", "options": ["a", "b"]},
                "follow_up": {"to": "all"},
            },
            "follow_up",
        ),
    ],
)
def test_bad_poll_steps_say_what_is_wrong(step: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        book(step)
