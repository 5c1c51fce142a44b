"""Local console accounts: argon2 password hashes, roles, audited changes."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.engine import audit
from failover.errors import InvalidRequest
from failover.models import User

ROLES = ("viewer", "operator", "admin")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


def add(session: Session, *, username: str, password: str, role: str, actor: str) -> User:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", username):
        raise InvalidRequest("a username is 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password needs at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidRequest(f"user '{username}' already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="user.added",
        actor=actor,
        target_type="user",
        target_id=user.id,
        details={"username": username, "role": role},
    )
    return user
