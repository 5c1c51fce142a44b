"""Microsoft's lag, measured per incident: how long before Microsoft said so did we know?

Four moments: the first evidence (the earliest failing source behind the
incident), our confirmation (the incident opened), when Graph first listed
Microsoft's issue (our first poll that saw it), and the issue's own
``startDateTime`` (when Microsoft says impact began). Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lag:
    confirmed_at: dt.datetime
    first_evidence_at: dt.datetime | None = None
    first_evidence_source: str | None = None
    graph_listed_at: dt.datetime | None = None
    ms_issue_id: str | None = None
    ms_started_at: dt.datetime | None = None

    @property
    def ahead_minutes(self) -> int | None:
        """Whole minutes from our confirmation to Microsoft listing the issue (negative: Microsoft was first)."""
        if self.graph_listed_at is None:
            return None
        return _minutes(self.graph_listed_at - self.confirmed_at)

    @property
    def evidence_ahead_minutes(self) -> int | None:
        if self.graph_listed_at is None or self.first_evidence_at is None:
            return None
        return _minutes(self.graph_listed_at - self.first_evidence_at)

    def sentence(self, now: dt.datetime) -> str:
        """The incident page's line."""
        ahead = self.ahead_minutes
        if ahead is None:
            waited = _minutes(now - self.confirmed_at)
            return f"Microsoft has listed no issue yet, {waited} minute(s) after we confirmed."
        if ahead > 0:
            return f"We knew {ahead} minute(s) before Microsoft said so ({self.ms_issue_id})."
        if ahead == 0:
            return f"We confirmed within the minute Microsoft listed {self.ms_issue_id}."
        return f"Microsoft listed {self.ms_issue_id} {-ahead} minute(s) before we confirmed."

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "first_evidence_at": _iso(self.first_evidence_at),
            "first_evidence_source": self.first_evidence_source,
            "confirmed_at": _iso(self.confirmed_at),
            "graph_listed_at": _iso(self.graph_listed_at),
            "ms_issue_id": self.ms_issue_id,
            "ms_started_at": _iso(self.ms_started_at),
            "ahead_minutes": self.ahead_minutes,
            "evidence_ahead_minutes": self.evidence_ahead_minutes,
            "sentence": self.sentence(now),
        }


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60) if delta >= dt.timedelta(0) else -int(-delta.total_seconds() // 60)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
