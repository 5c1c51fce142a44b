"""Pure rules of after-action reports and drill schedules (failover/domain/reports.py, drills.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from failover.domain import drills, reports
from failover.domain.preview import Prices

T0 = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)


def row(person: str, status: str, **kwargs: object) -> reports.LedgerRow:
    fields: dict[str, object] = {"step": "steps.0", "channel": "sms", "transport": "twilio", "body": "hi"} | kwargs
    return reports.LedgerRow(person_id=person, status=status, **fields)  # type: ignore[arg-type]


def test_time_to_share_counts_people_not_answers() -> None:
    assert reports.time_to_share([10.0, 20.0, 30.0, 40.0], 4, 0.5) == 20.0
    assert reports.time_to_share([10.0, 20.0, 30.0, 40.0], 4, 0.9) == 40.0  # 3.6 people: the 4th
    assert reports.time_to_share([10.0], 4, 0.5) is None  # never got there
    assert reports.time_to_share([], 0, 0.5) is None


def test_reach_needs_a_receipt_or_an_answer_and_skipped_people_are_not_targeted() -> None:
    rows = [
        row("a", "delivered", sent_at=T0),
        row("b", "sent", sent_at=T0),  # handed to Twilio, no receipt: not reached
        row("c", "sent", transport="outbox", sent_at=T0),
        row("d", "skipped", transport=None),  # no number: unreachable, not targeted
        row("e", "failed", error_code="30003", last_error="Unreachable destination handset", sent_at=T0),
        row("a", "delivered", step="escalation.0", sent_at=T0),
    ]
    answers = [reports.AnswerRow("c", "ack", T0 + dt.timedelta(seconds=30))]
    report = reports.build(started_at=T0, rows=rows, answers=answers, groups_of={}, prices=Prices())
    assert (report.overall.targeted, report.overall.reached, report.overall.acknowledged) == (4, 2, 1)
    assert report.overall.unreachable == 1 and report.overall.failed == 1
    assert report.failures == [("30003: Unreachable destination handset", 1)]
    assert report.escalation_messages == 1 and report.messages == 4
    # Outbox messages cost nothing; the escalation page does.
    assert report.cost.sms_segments == 4 and report.cost.total is None  # no price configured: no total


def test_cost_with_prices() -> None:
    rows = [
        row("a", "delivered", sent_at=T0, body="x" * 161),
        row("b", "sent", channel="email", transport="sendgrid", sent_at=T0),
    ]
    cost = reports.cost(rows, Prices(Decimal("0.01"), Decimal("0.001"), "EUR"))
    assert (cost.sms_segments, cost.emails, cost.total, cost.currency) == (2, 1, Decimal("0.02"), "EUR")


@pytest.mark.parametrize(
    ("text", "moment", "matches"),
    [
        ("0 10 * * 2", dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC), True),  # Tuesday
        ("0 10 * * 2", dt.datetime(2026, 11, 4, 10, 0, tzinfo=dt.UTC), False),
        ("*/15 9-17 * * 1-5", dt.datetime(2026, 11, 6, 17, 45, tzinfo=dt.UTC), True),
        ("*/15 9-17 * * 1-5", dt.datetime(2026, 11, 7, 12, 0, tzinfo=dt.UTC), False),  # Saturday
        ("0 0 1 * 7", dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC), True),  # the 1st, or any Sunday (cron's "or")
        ("0 0 1 * 7", dt.datetime(2026, 11, 8, 0, 0, tzinfo=dt.UTC), True),
        ("0 0 1 * 7", dt.datetime(2026, 11, 9, 0, 0, tzinfo=dt.UTC), False),
    ],
)
def test_cron_matching(text: str, moment: dt.datetime, matches: bool) -> None:
    assert drills.parse_cron(text).matches(moment) is matches


@pytest.mark.parametrize(
    ("text", "says"),
    [("0 10 * *", "needs 5 fields"), ("60 * * * *", "minute '60' is outside 0-59"), ("0 x * * *", "hour 'x'")],
)
def test_bad_cron_says_which_field(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        drills.parse_cron(text)


def test_a_slot_is_due_within_its_window_in_the_configured_zone() -> None:
    schedule = drills.Schedule("s", "rb", drills.parse_cron("0 10 * * *"), dt.timedelta(hours=1), "r", None)
    berlin = ZoneInfo("Europe/Berlin")
    assert schedule.due(dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC), berlin) == dt.datetime(
        2026, 11, 3, 9, 0, tzinfo=dt.UTC
    )  # 10:00 in Berlin is 09:00 UTC in November
    assert schedule.due(dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC), berlin) is None  # an hour late: too late


def test_drills_file_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "drills.yaml"
    path.write_text(
        'drills:\n  - name: a\n    runbook: rb\n    cron: "0 25 * * *"\n  - {name: a, runbook: rb, cron: "0 1 * * *"}\n'
    )
    schedules, problems = drills.load(path)
    assert schedules == [] and len(problems) == 1
    assert problems[0].line == 4 and "hour '25' is outside 0-23" in problems[0].message
    path.write_text(
        'drills:\n  - {name: a, runbook: rb, cron: "0 1 * * *"}\n  - {name: a, runbook: rb, cron: "0 2 * * *"}\n'
    )
    schedules, problems = drills.load(path)
    assert [str(p).split(": ", 1)[1] for p in problems] == ["drill 'a' named twice"] and problems[0].line == 3
    path.write_text('drills:\n  - {name: a, runbook: rb, cron: "0 1 * * *", window: 3d}\n')
    assert "at most 24h" in str(drills.load(path)[1][0])
