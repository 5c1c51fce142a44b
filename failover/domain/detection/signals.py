"""Normalised signals: what each source saw, in the detector's terms.

Sources (Graph, probes, the inbound webhook) turn their wire formats into
these values; the detector never sees a provider's JSON or an SMTP reply.

* A :class:`Reading` is one observation by one *voter* about one service:
  failing or healthy. Voters belong to an *origin*, the unit of independence
  for the probe quorum (five Alertmanager alerts are one origin).
* A :class:`Vote` is a voter's standing opinion: the latest reading plus when
  its current streak began, which is what ``hold`` is measured against.
* An :class:`Issue` is a Microsoft service health issue as last seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from failover.domain.detection.config import fold

# serviceHealthStatus values after which an issue no longer says anything is wrong.
CLOSED_STATUSES = frozenset(
    fold(s)
    for s in (
        "serviceOperational",
        "serviceRestored",
        "postIncidentReviewPublished",
        "falsePositive",
        "investigationSuspended",
        "resolved",
        "resolvedExternal",
    )
)
FALSE_POSITIVE = fold("falsePositive")
# Known spellings, so PascalCase from Microsoft's examples is stored the way live responses spell it.
KNOWN_STATUSES = {
    fold(s): s
    for s in (
        "serviceOperational",
        "investigating",
        "restoringService",
        "verifyingService",
        "serviceRestored",
        "postIncidentReviewPublished",
        "serviceDegradation",
        "serviceInterruption",
        "extendedRecovery",
        "falsePositive",
        "investigationSuspended",
        "resolved",
        "mitigatedExternal",
        "mitigated",
        "resolvedExternal",
        "confirmed",
        "reported",
        "unknownFutureValue",
    )
}
KNOWN_CLASSIFICATIONS = {fold(s): s for s in ("advisory", "incident", "unknownFutureValue")}
# healthOverviews statuses that by themselves make a service look suspicious.
HEALTHY_OVERVIEW = frozenset(fold(s) for s in ("serviceOperational", "serviceRestored", "falsePositive"))


def canonical_status(value: str) -> str:
    return KNOWN_STATUSES.get(fold(value), value.strip())


def canonical_classification(value: str) -> str:
    return KNOWN_CLASSIFICATIONS.get(fold(value), value.strip())


@dataclass(frozen=True)
class Issue:
    """A Microsoft service health issue (EX…, MO…, TM…) as the last successful poll saw it."""

    id: str
    service: str
    title: str
    status: str
    classification: str
    is_resolved: bool = False
    impact: str | None = None
    feature: str | None = None
    latest_post: str | None = None
    latest_post_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    last_modified_at: dt.datetime | None = None

    @property
    def open(self) -> bool:
        return not self.is_resolved and self.ended_at is None and fold(self.status) not in CLOSED_STATUSES

    @property
    def false_positive(self) -> bool:
        return fold(self.status) == FALSE_POSITIVE

    def fingerprint(self) -> tuple[str, str, bool, str | None]:
        """What makes a change worth a signal: status, classification, resolution, latest post."""
        return (fold(self.status), fold(self.classification), self.is_resolved, self.latest_post)


@dataclass(frozen=True)
class GraphSnapshot:
    """One successful poll of Graph service health."""

    issues: tuple[Issue, ...]
    overviews: dict[str, str] = field(default_factory=dict)  # service display name -> status
    requests: int = 0


@dataclass(frozen=True)
class Reading:
    """One observation by one voter about one service."""

    origin: str  # "probe:exchange-mx", "graph", "webhook:prometheus"
    voter: str  # "probe:exchange-mx", "graph", "webhook:prometheus/ExchangeDown"
    service: str
    failing: bool
    summary: str
    kind: str = "probe"  # probe | graph | webhook
    details: dict[str, Any] = field(default_factory=dict)
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Vote:
    """A voter's standing opinion about one service."""

    origin: str
    voter: str
    service: str
    failing: bool
    since: dt.datetime  # start of the current failing (or healthy) streak
    seen_at: dt.datetime
    summary: str = ""
    expires_at: dt.datetime | None = None

    def live(self, now: dt.datetime) -> bool:
        """A vote whose source stopped reporting says nothing any more."""
        return self.expires_at is None or now < self.expires_at


def cast(previous: Vote | None, reading: Reading, now: dt.datetime) -> Vote:
    """The vote after ``reading``: a streak continues only while the verdict stays the same."""
    continues = previous is not None and previous.failing == reading.failing and previous.live(now)
    return Vote(
        origin=reading.origin,
        voter=reading.voter,
        service=reading.service,
        failing=reading.failing,
        since=previous.since if continues and previous is not None else now,
        seen_at=now,
        summary=reading.summary,
        expires_at=reading.expires_at,
    )


def changed(previous: Vote | None, vote: Vote) -> bool:
    """Worth a signal row: a new voter, or a verdict that flipped."""
    return previous is None or previous.failing != vote.failing or not previous.live(vote.seen_at)


@dataclass(frozen=True)
class GraphFailure:
    """Why a Graph poll produced no snapshot.

    ``unreachable`` (timeouts, refused connections, 5xx, identity errors that
    are Microsoft's) is outage evidence: one failing origin. ``misconfigured``
    (a wrong secret, a missing ServiceHealth.Read.All consent) and
    ``throttled`` (429) are ours to fix or wait out and vote nothing.
    """

    kind: str  # unreachable | misconfigured | throttled
    detail: str
    retry_after: float | None = None

    @property
    def votes(self) -> bool:
        return self.kind == "unreachable"
