"""Two writes every change of the public status page makes, shared by the status channel and the engine.

``add_update`` appends an entry to a public incident's timeline (subscribers
are told of it later, once, by ``engine.subscribers.tell``); ``bump`` moves
the page's revision in the same transaction, which is what the publisher
polls for: the transactional outbox of the static snapshot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from failover.models import Notice, NoticeUpdate, StatusRevision


def add_update(
    session: Session,
    notice: Notice,
    *,
    progress: str,
    body: str,
    actor: str,
    now: dt.datetime,
    components: dict[str, Any] | None = None,
) -> NoticeUpdate:
    row = NoticeUpdate(
        notice_id=notice.id,
        progress=progress,
        body=body,
        components=dict(notice.components or {}) if components is None else components,
        created_by=actor,
        created_at=now,
    )
    notice.progress = progress
    session.add(row)
    bump(session, now)
    session.flush()
    return row


def bump(session: Session, now: dt.datetime) -> None:
    """The page changed: a new revision for every publish target to pick up."""
    changed = session.execute(
        update(StatusRevision)
        .where(StatusRevision.id == 1)
        .values(revision=StatusRevision.revision + 1, changed_at=now)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.add(StatusRevision(id=1, revision=1, changed_at=now))
        session.flush()
