"""Provider errors become retryable or permanent; backoff honours Retry-After."""

from __future__ import annotations

import random

import pytest

from failover.channels.base import classify_http, parse_retry_after
from failover.domain.durations import parse_duration
from failover.domain.retry import backoff_seconds
from failover.errors import PermanentDeliveryError, RetryableDeliveryError

CASES = [
    # status, twilio code, kind, maybe_sent
    (429, 20429, RetryableDeliveryError, False),
    (429, None, RetryableDeliveryError, False),
    (503, None, RetryableDeliveryError, False),  # "service unavailable": not processed, may fail over
    (502, None, RetryableDeliveryError, True),
    (500, None, RetryableDeliveryError, True),
    (408, None, RetryableDeliveryError, True),
    (None, None, RetryableDeliveryError, True),
    (400, 21211, PermanentDeliveryError, False),
    (400, 21610, PermanentDeliveryError, False),
    (400, 21614, PermanentDeliveryError, False),
    (400, 21611, RetryableDeliveryError, False),
    (400, None, PermanentDeliveryError, False),
    (401, 20003, PermanentDeliveryError, False),
    (404, None, PermanentDeliveryError, False),
]


@pytest.mark.parametrize(("status", "code", "kind", "maybe_sent"), CASES)
def test_classification(status: int | None, code: int | None, kind: type, maybe_sent: bool) -> None:
    error = classify_http(status, code=code, retry_after=3.0, detail="boom")
    assert type(error) is kind
    if isinstance(error, RetryableDeliveryError):
        assert error.maybe_sent is maybe_sent
        assert error.retry_after == 3.0
    assert error.code == str(code or status) if (code or status) else error.code is None


def test_classification_keeps_the_code_and_detail() -> None:
    error = classify_http(400, code=21211, detail="The 'To' number is not valid")
    assert error.code == "21211"
    assert error.detail == "HTTP 400 code 21211: The 'To' number is not valid"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-3", 0.0),
        ("999999", 3600.0),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_backoff_grows_exponentially_within_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_seconds(n, base=2, cap=60, rng=rng) for n in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] <= 60


def test_backoff_never_undercuts_retry_after() -> None:
    assert backoff_seconds(1, retry_after=30, base=2, rng=random.Random(0)) == 30
    assert backoff_seconds(9, retry_after=1, base=2, cap=60, rng=random.Random(0)) >= 30


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), (45, 45), ("250ms", 0.25), ("1 h", 3600)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "m10", "1h soon", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]
