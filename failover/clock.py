"""The only clock. Everything asks ``utcnow()`` so that freezegun moves it."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)
