"""What the console says to someone under pressure: step labels, local times, who counts as reached."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from failover.domain import reach
from failover.domain.labels import step_label
from failover.domain.reach import PersonState
from failover.domain.runbooks import Runbook
from failover.web.views import when

RUNBOOK = Runbook.model_validate(
    {
        "id": "mail",
        "title": "Mail down",
        "steps": [
            {"channel": "sms", "to": ["group:oncall"], "text": "x"},
            {"channel": "email", "to": ["group:all-staff", "person:alice"], "subject": "s", "text": "x"},
            {"channel": "status", "title": "Mail", "text": "x"},
        ],
        "escalation": [{"after": "10m", "channel": "voice", "to": ["group:it-leads"], "text": "x"}],
        "on_resolve": [{"channel": "sms", "to": ["group:oncall"], "text": "x"}],
    }
)


@pytest.mark.parametrize(
    ("key", "channel", "runbook", "label"),
    [
        ("steps.0", "sms", RUNBOOK, "Step 1 · SMS to oncall"),
        ("steps.1", "email", RUNBOOK, "Step 2 · email to all-staff, alice"),
        ("steps.2", "status", RUNBOOK, "Step 3 · status page"),
        ("steps.0", "voice", RUNBOOK, "Step 1 · call to oncall"),  # a fallback row keeps its step's key
        ("escalation.0", "voice", RUNBOOK, "Escalation 1 · call to it-leads"),
        ("on_resolve.0", "sms", RUNBOOK, "All-clear 1 · SMS to oncall"),
        ("approval.0", "sms", RUNBOOK, "Approval page 1 · SMS"),
        ("steps.7", "sms", RUNBOOK, "Step 8 · SMS"),  # the runbook changed since: what the key says
        ("steps.0", "sms", None, "Step 1 · SMS"),
    ],
)
def test_steps_are_named_for_people(key: str, channel: str, runbook: Runbook | None, label: str) -> None:
    assert step_label(key, channel, runbook) == label


NOW = dt.datetime(2026, 3, 2, 8, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("moment", "zone", "text"),
    [
        (dt.datetime(2026, 3, 2, 8, 5, tzinfo=dt.UTC), "Europe/Berlin", "09:05, 4 min ago (08:05 UTC)"),
        (dt.datetime(2026, 3, 2, 8, 5, tzinfo=dt.UTC), "UTC", "08:05 UTC, 4 min ago"),
        (dt.datetime(2026, 3, 2, 8, 9, 10, tzinfo=dt.UTC), "UTC", "08:09 UTC, just now"),
        (dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC), "America/New_York", "01:00, 2 h 9 min ago (06:00 UTC)"),
        (dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC), "Europe/Berlin", "00:30, 8 h 39 min ago (1 Mar 23:30 UTC)"),
        (dt.datetime(2026, 2, 27, 12, 0, tzinfo=dt.UTC), "UTC", "27 Feb 12:00 UTC, 2 days ago"),
        (dt.datetime(2026, 3, 2, 8, 19, 30, tzinfo=dt.UTC), "Europe/Berlin", "09:19, in 10 min (08:19 UTC)"),
    ],
)
def test_times_are_local_with_how_long_ago_and_utc_beside(moment: dt.datetime, zone: str, text: str) -> None:
    assert when(moment, now=NOW, zone=ZoneInfo(zone)) == text


def state(**kwargs: object) -> PersonState:
    return PersonState("p", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        # Handed to a provider (or the outbox) and silent: not reached, whatever the row says.
        (state(addressed=True, asked=True), {"all", "not_reached", "no_answer"}),
        (state(addressed=True, asked=True, reached=True), {"all", "no_answer"}),
        # An answer proves reach, even without a receipt.
        (state(addressed=True, asked=True, answer="ack"), {"all"}),
        (state(addressed=True, asked=True, answer="need_help"), {"all", "need_help"}),
        (state(addressed=True, asked=True, failed=True), {"all", "not_reached", "no_answer", "failed"}),
        # Named by a step but no channel could carry anything: unreachable, never "not yet".
        (state(addressed=True), {"all", "unreachable"}),
    ],
)
def test_each_person_falls_under_the_filters_that_describe_them(person: PersonState, expected: set[str]) -> None:
    assert {name for name in reach.FILTERS if reach.matches(person, name)} == expected


def test_filter_counts_add_up_over_everyone() -> None:
    people = [state(addressed=True, asked=True, reached=True)] * 3 + [state(addressed=True)] * 2
    counts = reach.filter_counts(people)
    assert counts == {"all": 5, "not_reached": 0, "failed": 0, "no_answer": 3, "need_help": 0, "unreachable": 2}
