"""How long to wait before the next attempt: exponential backoff with jitter.

A provider's Retry-After is a floor, never shortened by jitter.
"""

from __future__ import annotations

import random


def backoff_seconds(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 2.0,
    cap: float = 120.0,
    rng: random.Random | None = None,
) -> float:
    """Delay after the ``attempt``-th failed try (1-based): full jitter over base * 2^(n-1)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    jittered: float = ceiling / 2 + (rng or random.Random()).uniform(0, ceiling / 2)
    return max(jittered, retry_after or 0.0)
