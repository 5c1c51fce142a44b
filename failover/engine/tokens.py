"""Bearer tokens for the JSON API: created by an admin for a person, each with a role and an expiry, stored hashed.

A token is shown once, when it is created. The database keeps its SHA-256
(the token is 256 random bits, so a slow password hash would add nothing)
and the first characters, so people can tell tokens apart. Calls made with a
token are audited as ``api:<name>``.

A token belongs to a console user, its owner, and acts as that person: it
never has more than the owner's current role, stops working while the owner
is disabled, and counts as the owner for approvals (an operator cannot
approve with their token what they requested in the console, nor the other
way round). Tokens from before owners existed (revision 0009) belong to the
admin who created them; those made with the CLI belong to nobody: they keep
working, and can never approve.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain.roles import ROLES
from failover.engine import audit
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import ApiToken, User

PREFIX = "fo_"
MAX_DAYS = 366
# last_used_at is a hint for admins, not a log: write it at most this often per token.
TOUCH_EVERY = dt.timedelta(minutes=5)


ACTOR_PREFIX = "api:"
_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class TokenPrincipal:
    id: int
    name: str
    role: str  # the token's role, lowered to its owner's if that is less
    owner: str | None  # the owner's username; None for tokens from before owners existed

    @property
    def actor(self) -> str:
        return f"{ACTOR_PREFIX}{self.name}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create(session: Session, *, name: str, role: str, days: int, actor: str, owner: str) -> tuple[int, str]:
    """Create a token acting for ``owner`` (a username); returns (id, the token itself), never retrievable again."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name or ""):
        raise InvalidRequest("a token name is 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    person = session.scalars(select(User).where(User.username == owner)).one_or_none()
    if person is None or person.disabled:
        raise InvalidRequest(f"no enabled user '{owner}' to own the token")
    if _RANK[role] > _RANK[person.role]:
        article = "an" if person.role[0] in "aeiou" else "a"
        raise InvalidRequest(f"{owner} is {article} {person.role}: their token cannot be {role}")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"a token expires after 1 to {MAX_DAYS} days")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise InvalidRequest(f"a token named '{name}' already exists")
    token = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        name=name,
        token_hash=digest(token),
        prefix=token[: len(PREFIX) + 6],
        role=role,
        created_by=actor,
        user_id=person.id,
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        action="token.created",
        actor=actor,
        target_type="token",
        target_id=row.id,
        details={"name": name, "role": role, "owner": owner, "expires_at": row.expires_at.isoformat()},
    )
    return row.id, token


def revoke(session: Session, *, token_id: int, actor: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.id == token_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is not None:
        raise Conflict(f"token '{row.name}' is already revoked")
    row.revoked_at = utcnow()
    audit.record(
        session, action="token.revoked", actor=actor, target_type="token", target_id=row.id, details={"name": row.name}
    )


def authenticate(session: Session, token: str) -> TokenPrincipal | None:
    """The principal a presented token stands for, or None (unknown, expired, revoked, or its owner disabled)."""
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if row.user_id is None:
        return TokenPrincipal(row.id, row.name, row.role, None)
    owner = session.get(User, row.user_id)
    if owner is None or owner.disabled:
        return None
    role = row.role if _RANK[row.role] <= _RANK[owner.role] else owner.role
    return TokenPrincipal(row.id, row.name, role, owner.username)


def person(session: Session, actor: str) -> str | None:
    """Who is accountable for an actor: a token's owner, else the actor itself; None for an ownerless token."""
    if not actor.startswith(ACTOR_PREFIX):
        return actor
    name = actor.removeprefix(ACTOR_PREFIX)
    owner = session.scalar(
        select(User.username).join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.name == name)
    )
    return str(owner) if owner is not None else None


def touch(session: Session, *, token_id: int) -> None:
    """Record that a token was used (at most every few minutes)."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .where((ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - TOUCH_EVERY))
        .values(last_used_at=now)
    )


def needs_touch(session: Session, token_id: int) -> bool:
    last = session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))
    return last is None or last < utcnow() - TOUCH_EVERY


def list_tokens(session: Session) -> list[dict[str, Any]]:
    now = utcnow()
    owners = {user_id: name for user_id, name in session.execute(select(User.id, User.username))}
    return [
        {
            "id": t.id,
            "name": t.name,
            "prefix": t.prefix,
            "role": t.role,
            "created_by": t.created_by,
            "owner": owners.get(t.user_id) if t.user_id is not None else None,
            "created_at": t.created_at,
            "expires_at": t.expires_at,
            "last_used_at": t.last_used_at,
            "revoked_at": t.revoked_at,
            "active": t.revoked_at is None and t.expires_at > now,
        }
        for t in session.scalars(select(ApiToken).order_by(ApiToken.id.desc()))
    ]
