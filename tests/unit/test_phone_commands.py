"""Activation by phone, the pure part: what an operator's text means, the slow-down, the one-SMS preview."""

from __future__ import annotations

import datetime as dt

import pytest

from failover.domain.phone_commands import Approve, Code, Run, parse, wait_before_next

NOW = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("RUN exchange-outage 4321", Run("exchange-outage", "4321")),
        ("run  Exchange-Outage   4321 ", Run("exchange-outage", "4321")),
        ("APPROVE 12 8765", Approve(12, "8765")),
        ("approve #12 8765", Approve(12, "8765")),
        ("123456", Code("123456")),
        ("123 456", Code("123456")),
        ("Run out of battery, call me", Run("", "")),  # a RUN that is not one: the usage text, no attempt counted
        ("APPROVE it please", Approve(0, "")),
    ],
)
def test_operator_commands(body: str, command: object) -> None:
    assert parse(body) == command


@pytest.mark.parametrize("body", ["ACK", "1", "12345", "1234567", "DOWN MAIL", "running late", None])
def test_ordinary_replies_are_no_commands(body: str | None) -> None:
    assert parse(body) is None


def test_three_failures_slow_down_to_one_try_a_minute() -> None:
    assert wait_before_next(2, NOW, NOW) is None
    assert wait_before_next(3, NOW, NOW + dt.timedelta(seconds=20)) == dt.timedelta(seconds=40)
    assert wait_before_next(4, NOW, NOW + dt.timedelta(seconds=60)) is None
