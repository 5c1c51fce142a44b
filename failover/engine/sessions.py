"""Console sessions kept in the database, so that the server can end them.

The session cookie (signed by Flask) carries a random token; the database
keeps its SHA-256 in ``console_sessions``. A session lives while its row
does: every request looks the row up (one indexed read, in the embedded mode
as in production, no Redis needed), so deleting it ends the session at once,
whatever copies of the cookie exist. ``last_seen_at`` is written at most once
a minute, not per request. A session ends when it has been idle for
``idle`` seconds or ``max_age`` seconds after login.

Rows with ``pending`` set are logins that passed the password and wait for
the second factor; they never count as a session. Who ends which sessions is
decided by :mod:`failover.engine.users`, in the transaction of the change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.models import ConsoleSession, User

TOUCH_EVERY = dt.timedelta(seconds=60)
# Older rows are dead whatever the settings (FAILOVER_SESSION_MAX_AGE is at most 7 days): swept at each login.
KEEP_AT_MOST = dt.timedelta(days=8)


@dataclass(frozen=True)
class Live:
    """A session row that is still good, and its user."""

    id: int
    user: User
    stale: bool  # last_seen_at is old enough to be written again


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start(session: Session, *, user_id: int, ip: str | None, pending: bool = False) -> str:
    """Start a session (or a pending login) and return the token for the cookie."""
    now = utcnow()
    session.execute(delete(ConsoleSession).where(ConsoleSession.created_at < now - KEEP_AT_MOST))
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=digest(token),
            user_id=user_id,
            pending=pending,
            ip=(ip or "")[:64] or None,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def find(session: Session, token: str, *, pending: bool, lock: bool = False) -> ConsoleSession | None:
    if not token or len(token) > 128:
        return None
    query = select(ConsoleSession).where(ConsoleSession.token_hash == digest(token), ConsoleSession.pending == pending)
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def load(session: Session, token: str, *, idle: int, max_age: int) -> Live | None:
    """The live session a cookie's token stands for: None once ended, idle too long, too old or disabled."""
    row = find(session, token, pending=False)
    if row is None:
        return None
    now = utcnow()
    if now - row.last_seen_at > dt.timedelta(seconds=idle) or now - row.created_at > dt.timedelta(seconds=max_age):
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    # A quarter of the idle timeout at most, so that a short timeout stays accurate.
    touch_every = min(TOUCH_EVERY, dt.timedelta(seconds=idle / 4))
    return Live(row.id, user, stale=now - row.last_seen_at >= touch_every)


def touch(session: Session, *, session_id: int) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id).values(last_seen_at=utcnow()))


def end(session: Session, token: str) -> int:
    """End one session (logout); returns how many rows went (0 or 1)."""
    result = session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == digest(token)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_all(session: Session, *, user_id: int, keep: str | None = None) -> int:
    """End every session and pending login of a user, but ``keep`` (the caller's own); returns how many."""
    query = delete(ConsoleSession).where(ConsoleSession.user_id == user_id)
    if keep:
        query = query.where(ConsoleSession.token_hash != digest(keep))
    result = session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
