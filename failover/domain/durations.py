"""Durations as people write them in YAML: ``90s``, ``10m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Far beyond any sensible interval, and small enough that "now + duration" is always a valid date.
_LONGEST = 10_000 * 86400


def parse_duration(text: str | int | float) -> dt.timedelta:
    """``"1h30m"`` -> 90 minutes. A bare number means seconds."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):  # null, a list, a mapping
        raise ValueError("expected a duration such as 90s, 10m or 1h")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        compact = text.strip().replace(" ", "")
        if not compact:
            raise ValueError("expected a duration such as 90s, 10m or 1h")
        seconds, position = 0.0, 0
        for match in _PART.finditer(compact):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            position = match.end()
        if position != len(compact):
            raise ValueError(f"'{text}' is not a duration such as 90s, 10m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(seconds) or seconds > _LONGEST:
        raise ValueError(f"'{text}' is longer than any duration failover can use (at most 10000d)")
    return dt.timedelta(seconds=seconds)


def _coerce(value: Any) -> Any:
    return value if isinstance(value, dt.timedelta) else parse_duration(value)


Duration = Annotated[dt.timedelta, BeforeValidator(_coerce)]
