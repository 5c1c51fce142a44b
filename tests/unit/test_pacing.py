"""How long the SMS take to reach phones: our sending, then Twilio's senders at the declared MPS (domain.pacing)."""

from __future__ import annotations

import pytest

from failover.domain import pacing
from failover.domain.pacing import Pace


def test_the_issue_example_5000_sms_at_30_mps_is_about_3_minutes_after_we_finish() -> None:
    handout = pacing.estimate(5000, 5000, Pace(sender_mps=30, max_concurrent=100))
    assert handout is not None
    assert handout.send_s == pytest.approx(5000 * 0.15 / 100 + 0.15)  # 7.65 s: the benchmark's bound
    assert handout.provider_s == pytest.approx(5000 / 30)
    assert handout.after_send_s == pytest.approx(5000 / 30 - 7.65)
    assert handout.text == "5,000 SMS at 30 MPS: about 3 minutes after we finish sending (we send them in 8 s)."
    assert not handout.overflows


def test_mps_counts_segments_not_messages() -> None:
    handout = pacing.estimate(1000, 3000, Pace(sender_mps=10, max_concurrent=50))
    assert handout is not None and handout.provider_s == pytest.approx(300)
    assert handout.text.startswith("1,000 SMS (3,000 segments) at 10 MPS: about 5 minutes after")


def test_undeclared_mps_says_so_and_names_the_setting() -> None:
    handout = pacing.estimate(200, 200, Pace(max_concurrent=50))
    assert handout is not None and handout.provider_s is None and handout.after_send_s is None
    assert "not known: set FAILOVER_TWILIO_SENDER_MPS" in handout.text and "(not declared)" in handout.text
    assert handout.text.startswith("200 SMS: we send them in 1 s;")


def test_a_pool_faster_than_our_sending_hands_out_as_we_send() -> None:
    handout = pacing.estimate(100, 100, Pace(sender_mps=1000, max_concurrent=50))
    assert handout is not None and handout.after_send_s == 0.0
    assert handout.text == "100 SMS at 1000 MPS: Twilio hands them out as fast as we send (we send them in 1 s)."


def test_no_cap_means_no_send_estimate_and_no_sms_means_no_estimate() -> None:
    uncapped = pacing.estimate(600, 600, Pace(sender_mps=1, max_concurrent=0))
    assert uncapped is not None and uncapped.send_s is None
    assert uncapped.text == "600 SMS at 1 MPS: about 10 minutes after we finish sending."
    assert pacing.estimate(0, 0, Pace(sender_mps=1)) is None


def test_beyond_twilios_ten_hour_queue_the_tail_would_fail() -> None:
    handout = pacing.estimate(50_000, 50_000, Pace(sender_mps=1, max_concurrent=100))
    assert handout is not None and handout.overflows
    assert "13 h 52 min" in handout.text and "30001" in handout.text


def test_vonage_is_mentioned_at_its_request_rate_when_it_sends_sms() -> None:
    handout = pacing.estimate(1800, 1800, Pace(sender_mps=30, max_concurrent=50, vonage_rate=30))
    assert handout is not None and handout.vonage_s == pytest.approx(60)
    assert handout.text.endswith("Through Vonage (FAILOVER_VONAGE_RATE) about 60 s.")


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.2, "1 s"), (89, "89 s"), (90, "2 minutes"), (151, "3 minutes"), (5399, "90 minutes"), (7800, "2 h 10 min")],
)
def test_durations_read_as_a_person_says_them(seconds: float, said: str) -> None:
    assert pacing.duration(seconds) == said


def test_slow_is_the_doctor_threshold() -> None:
    assert pacing.slow(27_000, 30) is None  # exactly 15 minutes
    assert pacing.slow(27_001, 30) == pytest.approx(27_001 / 30)
    assert pacing.slow(10**6, None) is None  # not declared: nothing to judge
