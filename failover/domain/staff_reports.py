"""Staff outage reports: an internal Downdetector, as one more detection source.

People in the building feel an outage before Microsoft says so. A known
contact texting ``DOWN MAIL`` (or ``down teams, cannot join``, or ``DOWN``
alone for the whole suite) makes one *report*. The policy lives in
detection.yaml under ``reports:`` (:class:`~failover.domain.report_policy.ReportsPolicy`); this module is
pure: it reads a text (:func:`parse`) and counts reports (:func:`tally`).

Counting: the distinct reporters with a report for a service within
``window`` - never the reports, so a flood from one phone (or five from the
same person) is one reporter. ``min_reporters`` of them make the ``reports``
source fail for that service: a :class:`~failover.domain.detection.signals.Reading`
with origin ``reports``, one origin toward ``probe_quorum`` exactly like a
probe (and held for ``hold`` like one). Its vote expires when the window
would no longer hold ``min_reporters`` reporters, so the source clears by
itself when the reports age out, with or without a new report.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from failover.domain.detection.signals import Reading
from failover.domain.report_policy import ReportsPolicy

ORIGIN = "reports"  # the detection origin (and voter) of staff reports
KIND = "reports"
MAX_PARSED = 160  # like domain.replies: a report is short; never scan a long body
MAX_WORDS = 12
_WORD = re.compile(r"[A-Z0-9][A-Z0-9+&-]*")


@dataclass(frozen=True)
class Parsed:
    """A text that starts with a report keyword."""

    keyword: str
    services: tuple[str, ...]  # empty: it named no known service and there is no suite to fall back on


def parse(body: str | None, policy: ReportsPolicy) -> Parsed | None:
    """``DOWN MAIL`` -> Exchange Online; ``down`` -> the suite; None when the text is not a report.

    The keyword must be the first word (so "the printer is down" is no report);
    any case, punctuation and extra words are fine. Every alias among the next
    words counts (``DOWN MAIL AND TEAMS`` reports both); none means the suite.
    """
    text = unicodedata.normalize("NFKC", body or "")[:MAX_PARSED].upper()
    words = _WORD.findall(text)[:MAX_WORDS]
    if not words or words[0] not in policy.keywords:
        return None
    known = policy.word_map()
    services = tuple(dict.fromkeys(known[w] for w in words[1:] if w in known))
    if not services and policy.suite:
        services = (policy.suite,)
    return Parsed(words[0], services)


@dataclass(frozen=True)
class Report:
    """One counted report: who (a person id, or ``web:<client hash>``), about what, when."""

    at: dt.datetime
    service: str
    reporter: str


@dataclass(frozen=True)
class Tally:
    service: str
    reporters: int
    failing: bool
    expires_at: dt.datetime | None  # failing: when the window will no longer hold min_reporters

    def summary(self, policy: ReportsPolicy) -> str:
        minutes = int(policy.window.total_seconds() // 60)
        return f"{self.reporters} staff report(s) in {minutes}m (fails at {policy.min_reporters})"


def tally(reports: Iterable[Report], service: str, now: dt.datetime, policy: ReportsPolicy) -> Tally:
    """Distinct reporters about ``service`` within the window ending at ``now``."""
    start = now - policy.window
    latest: dict[str, dt.datetime] = {}
    for report in reports:
        if report.service != service or not start < report.at <= now:
            continue
        if report.at > latest.get(report.reporter, start):
            latest[report.reporter] = report.at
    count = len(latest)
    if count < policy.min_reporters:
        return Tally(service, count, False, None)
    newest_first = sorted(latest.values(), reverse=True)
    # The count drops below min_reporters when the min_reporters-th newest report leaves the window.
    return Tally(service, count, True, newest_first[policy.min_reporters - 1] + policy.window)


def reading(result: Tally, policy: ReportsPolicy) -> Reading:
    """The reports source's reading for one service: a probe's reading in every respect that matters."""
    return Reading(
        origin=ORIGIN,
        voter=ORIGIN,
        service=result.service,
        failing=result.failing,
        summary=result.summary(policy),
        kind=KIND,
        details={"reporters": result.reporters},
        expires_at=result.expires_at,
    )


def capped(reports: Iterable[Report], reporter: str, now: dt.datetime, policy: ReportsPolicy, limit: int) -> bool:
    """True when ``reporter`` already made ``limit`` reports within the window."""
    start = now - policy.window
    return sum(1 for r in reports if r.reporter == reporter and start < r.at <= now) >= limit


def first_in_window(reports: Iterable[Report], reporter: str, now: dt.datetime, policy: ReportsPolicy) -> bool:
    """True when ``reporter`` made no report within the window: they get the one short reply."""
    start = now - policy.window
    return not any(r.reporter == reporter and start < r.at <= now for r in reports)


def buckets(
    reports: Iterable[Report], services: Iterable[str], now: dt.datetime, *, width: dt.timedelta, count: int
) -> Mapping[str, list[int]]:
    """Distinct reporters per service in ``count`` buckets of ``width``, oldest first (the dashboard's sparkline)."""
    wanted = list(services)
    seen: dict[str, list[set[str]]] = {s: [set() for _ in range(count)] for s in wanted}
    start = now - width * count
    for report in reports:
        if report.service not in seen or not start < report.at <= now:
            continue
        index = min(count - 1, int((report.at - start) / width))
        seen[report.service][index].add(report.reporter)
    return {s: [len(b) for b in seen[s]] for s in wanted}
