"""The follow-up sweep (beat, every few seconds): what delivery tracking must do without a request.

1. apply receipts that arrived while the dispatcher still held their row;
2. fall back for rows that failed (including those the dispatcher failed);
3. fire due escalations;
4. page the approvers of activations that wait for a second operator;
5. prune old provider events and rate-limit windows.

Everything it needs is in the database, so a restart of any process only
delays it; each step is its own transaction and returns the dispatch batches
for the relay to publish after commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from failover.db import Database
from failover.domain.runbooks import Catalog
from failover.engine import approvals, escalation, fallback, limits, tracking


@dataclass
class Report:
    batch_ids: list[int] = field(default_factory=list)


def sweep(
    database: Database, catalog: Catalog | None, *, now: dt.datetime, escalation_limit: int, console_url: str = ""
) -> Report:
    """One pass. Without a catalog (the files on disk do not load) fallbacks and due escalations wait."""
    report = Report()
    with database.transaction() as session:
        tracking.apply_deferred(session, now=now)  # rows they fail are picked up by the fallback just below
    if catalog is not None:
        with database.transaction() as session:
            report.batch_ids += fallback.fall_back(session, catalog, now=now)
        with database.transaction() as session:
            report.batch_ids += escalation.fire_due(session, catalog, now=now, limit=escalation_limit)
        with database.transaction() as session:
            report.batch_ids += approvals.page_waiting(session, catalog, now=now, console_url=console_url)
    with database.transaction() as session:
        tracking.prune(session, now=now)
        limits.prune(session, now=now)
    return report
