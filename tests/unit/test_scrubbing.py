"""Masking is linear in its input and cuts before it masks; credentials never survive a log line (issue 11, 2 and 8)."""

from __future__ import annotations

import time

import pytest

from failover.privacy import REDACTED, redact_secrets, scrub, truncate

MB = 1_000_000
# Inputs that made the old e-mail pattern retry a run from each of its positions (quadratic: 100 KB took
# 10 s in the review, 1 MB about 20 minutes), and the same trick against every other pattern.
ADVERSARIAL = {
    "one long word": "a" * MB,
    "at signs without a domain": "a@" * (MB // 2),
    "a domain without a top-level label": "x@" + "b." * (MB // 2 - 1),
    "a number that never ends": "+1" + " " * MB,
    "bearer without end": "bearer " * (MB // 7),
    "url schemes without a host": "://" * (MB // 3),
}
# Generous: linear work on 1 MB takes well under a second here; the quadratic pattern took minutes.
BOUND_S = 5.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_masking_a_megabyte_of_adversarial_text_is_linear(text: str) -> None:
    started = time.perf_counter()
    masked = scrub(text)
    redacted = redact_secrets(text)
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_S, f"{elapsed:.1f} s for 1 MB"
    assert len(masked) >= len(text) // 2 and redacted  # the text went through, it was not dropped


def test_truncation_happens_before_masking() -> None:
    # A limit makes the cost depend on the limit, not on what was sent.
    started = time.perf_counter()
    assert scrub("a" * (50 * MB), 500) == "…"
    assert time.perf_counter() - started < BOUND_S


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Contact alice@personal.example now", 20, "Contact…"),  # never "alice@perso…"
        ("Call +1 202 555 0101 today", 14, "Call…"),  # never "+1 202 5…"
        ("the quick brown fox", 13, "the quick…"),
        ("short", 10, "short"),
    ],
)
def test_a_cut_never_leaves_half_an_address(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected
    assert len(scrub(text, limit)) <= limit


def test_addresses_at_the_end_of_a_sentence_are_still_masked() -> None:
    text = scrub("bounce from bob@home.example. Call +1 202 555 0101, or x@y.co")
    assert text == "bounce from b***@home.example. Call +1********01, or x***@y.co"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("HEADERS: {'Authorization': 'Bearer SG.abcdefghijkl.mnopqrstuvwxyz01'}", "SG.abcdefghijkl.mnopqrstuvwxyz01"),
        ("Authorization: Basic QUMxMjM6c2VjcmV0LXRva2Vu", "QUMxMjM6c2VjcmV0LXRva2Vu"),
        ("connecting to redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2"),
        ("postgresql+psycopg://failover:db-pass-123@db/failover", "db-pass-123"),
        ("GET /v1?api_key=k-123456&limit=5", "k-123456"),
        ('{"access_token": "opaque-access-token", "expires_in": 3599}', "opaque-access-token"),
        ("client_secret=graph~secret.value", "graph~secret.value"),
        ("password: correct-horse", "correct-horse"),
        ("with token fo_abcdefghijklmnopqrstuvwxyz012345", "fo_abcdefghijklmnopqrstuvwxyz012345"),
        ("X-Twilio-Signature: abcDEF123=", "abcDEF123="),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ],
)
def test_credentials_are_redacted(line: str, secret: str) -> None:
    redacted = redact_secrets(line)
    assert secret not in redacted and REDACTED in redacted


def test_ordinary_text_keeps_its_words() -> None:
    line = "delivery 42 sent; event_key=SM1:delivered; task succeeded in 0.012345678s"
    assert redact_secrets(line) == line
