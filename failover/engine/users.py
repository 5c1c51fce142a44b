"""Local console accounts: argon2 password hashes, roles, optional TOTP, every change audited.

These accounts never depend on Microsoft sign-in: they are the break-glass
way in when Entra ID is down too. Logins report their outcome as a value
(:class:`LoginOutcome`) instead of raising, so that a failed attempt and its
audit row are committed together; so do the forms that ask for the current
password again (``auth.reauth_failed``).

Sessions (:mod:`failover.engine.sessions`) end in the transaction of the
change that ends them: a password or second-factor change by the person
ends their *other* sessions (the one they are using carries on); a password
set by an admin, a role change, a second-factor reset and disabling end all
of them. TOTP secrets are stored sealed (:mod:`failover.secretbox`).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from failover.clock import utcnow
from failover.domain.roles import ROLES
from failover.engine import audit, sessions
from failover.errors import InvalidRequest, NotFound
from failover.models import ConsoleSession, User
from failover.secretbox import SecretBox, SecretUnreadable

log = logging.getLogger(__name__)


MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 would hash a megabyte happily; a login form should not make it
TOTP_ISSUER = "failover"
# Between the password and the code; and wrong codes one pending login may try before the password is asked again.
PENDING_TTL = dt.timedelta(minutes=5)
TOTP_TRIES = 5
_hasher = PasswordHasher()
# Verified when the account does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("failover: no such account")


@dataclass(frozen=True)
class Account:
    """What the web layer keeps of a user: no ORM object outlives its session."""

    id: int
    username: str
    role: str
    totp: bool
    disabled: bool


@dataclass(frozen=True)
class LoginOutcome:
    account: Account | None = None
    # The cookie's token: a session, or with needs_totp a pending login waiting for the code.
    token: str | None = None
    needs_totp: bool = False
    failure: str | None = None  # for the audit log; the person is only told "wrong name or password"
    locked: bool = False  # too many wrong codes: this pending login is over, the password is asked again

    @property
    def ok(self) -> bool:
        return self.account is not None and self.failure is None


def account_of(user: User) -> Account:
    return Account(
        id=user.id, username=user.username, role=user.role, totp=bool(user.totp_secret), disabled=user.disabled
    )


def get(session: Session, user_id: int) -> Account | None:
    user = session.get(User, user_id)
    return account_of(user) if user is not None else None


def list_accounts(session: Session) -> list[dict[str, Any]]:
    users = session.scalars(select(User).order_by(User.username))
    return [
        {
            "id": u.id,
            "username": u.username,
            "role": u.role,
            "totp": bool(u.totp_secret),
            "disabled": u.disabled,
            "contact": u.contact_id,
            "created_at": u.created_at,
            "last_login_at": u.last_login_at,
        }
        for u in users
    ]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


# -- administration -----------------------------------------------------------


def add(session: Session, *, username: str, password: str, role: str, actor: str) -> User:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", username):
        raise InvalidRequest("a username is 1-64 letters, digits, '.', '_', '@' or '-'")
    _check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidRequest(f"user '{username}' already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role, created_at=utcnow())
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


def set_password(session: Session, *, username: str, password: str, actor: str) -> None:
    """An administrator (or the CLI on the server) sets someone's password; all their sessions end."""
    user = _by_name(session, username, lock=True)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    _audit_user(session, "user.password_set", actor, user, {"sessions_ended": _end_all(session, user)})


def change_password(
    session: Session, *, user_id: int, current: str, new: str, keep: str | None, ip: str | None
) -> Account | None:
    """Someone changes their own password; the current one is asked again (None: it was wrong, audited).

    Their other sessions end; ``keep``, the session they are using, carries on.
    """
    user = _by_id(session, user_id, lock=True)
    if not _verify(user.password_hash, current):
        _reauth_failed(session, user, "password change", ip)
        return None
    _check_password(new)
    user.password_hash = _hasher.hash(new)
    ended = _end_all(session, user, keep=keep)
    _audit_user(session, "user.password_changed", user.username, user, {"sessions_ended": ended})
    return account_of(user)


def set_role(session: Session, *, username: str, role: str, actor: str) -> None:
    """Give someone another role; their sessions end, so the next login shows them what the role allows."""
    user = _by_name(session, username, lock=True)
    _check_role(role)
    if user.role == "admin" and role != "admin":
        _keep_an_admin(session, user)
    previous, user.role = user.role, role
    ended = _end_all(session, user)
    _audit_user(session, "user.role_changed", actor, user, {"from": previous, "to": role, "sessions_ended": ended})


def set_contact(session: Session, *, username: str, contact_id: str | None, actor: str) -> None:
    """Link an account to a person of contacts.yaml (whose phone is paged when an approval waits), or unlink it."""
    user = _by_name(session, username, lock=True)
    previous, user.contact_id = user.contact_id, contact_id or None
    _audit_user(session, "user.contact_changed", actor, user, {"from": previous, "to": user.contact_id})


def set_disabled(session: Session, *, username: str, disabled: bool, actor: str) -> None:
    """Disable (every session ends, every token of theirs stops) or enable an account."""
    user = _by_name(session, username, lock=True)
    if disabled and user.role == "admin":
        _keep_an_admin(session, user)
    user.disabled = disabled
    extra = {"sessions_ended": _end_all(session, user)} if disabled else {}
    _audit_user(session, "user.disabled" if disabled else "user.enabled", actor, user, extra)


def reset_totp(session: Session, *, username: str, actor: str) -> None:
    """Remove someone's second factor (a lost phone); all their sessions end, the phone's too."""
    user = _by_name(session, username, lock=True)
    user.totp_secret, user.totp_last_step = None, None
    _audit_user(session, "user.totp_reset", actor, user, {"sessions_ended": _end_all(session, user)})


# -- logging in -----------------------------------------------------------------


def check_password(session: Session, *, username: str, password: str, ip: str | None) -> LoginOutcome:
    """First step of a login. Audits failures, and success when no second factor follows.

    Success opens the session, or with a second factor a pending login, whose token the outcome carries.
    """
    user = session.scalars(select(User).where(User.username == username).with_for_update()).one_or_none()
    if user is None:
        _verify(_DUMMY_HASH, password)
        # The attempted name is not recorded: people type passwords into the wrong field.
        return _failed(session, None, "unknown user", ip)
    if not _verify(user.password_hash, password):
        return _failed(session, user, "wrong password", ip)
    if user.disabled:
        return _failed(session, user, "account disabled", ip)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    if user.totp_secret:
        token = sessions.start(session, user_id=user.id, ip=ip, pending=True)
        return LoginOutcome(account_of(user), token=token, needs_totp=True)
    return _logged_in(session, user, ip, totp=False)


def pending_login(session: Session, token: str) -> Account | None:
    """Whose login waits for a code under this token (None: no such login, or it expired)."""
    row = sessions.find(session, token, pending=True)
    if row is None or utcnow() - row.created_at > PENDING_TTL:
        return None
    user = session.get(User, row.user_id)
    return account_of(user) if user is not None else None


def check_totp(session: Session, *, token: str, code: str, ip: str | None, box: SecretBox) -> LoginOutcome:
    """Second step: a six-digit code from the enrolled authenticator, each code good once.

    The wrong codes are counted on the pending login, in the database (a replayed
    cookie does not reset them); after ``TOTP_TRIES`` the pending login is
    deleted and audited as ``auth.totp_locked``: the password is asked again.
    """
    row = sessions.find(session, token, pending=True, lock=True)
    if row is None or utcnow() - row.created_at > PENDING_TTL:
        return LoginOutcome(failure="login expired", locked=True)
    user = session.scalars(select(User).where(User.id == row.user_id).with_for_update()).one_or_none()
    if user is None or user.disabled or not user.totp_secret:
        session.delete(row)
        return _failed(session, user, "account changed during login", ip)
    try:
        secret = box.open(user.totp_secret)
    except SecretUnreadable:
        log.error("the TOTP secret of user %s cannot be opened: check FAILOVER_TOTP_KEY", user.id)
        return _wrong_code(session, row, user, "TOTP secret unreadable: FAILOVER_TOTP_KEY does not open it", ip)
    step = _matching_step(secret, code, after=user.totp_last_step)
    if step is None:
        return _wrong_code(session, row, user, "wrong or reused TOTP code", ip)
    user.totp_last_step = step
    session.delete(row)  # a fresh token for the session itself: nothing carried over from before the code
    return _logged_in(session, user, ip, totp=True)


def _wrong_code(session: Session, row: ConsoleSession, user: User, reason: str, ip: str | None) -> LoginOutcome:
    row.totp_failures += 1
    outcome = _failed(session, user, reason, ip)
    if row.totp_failures < TOTP_TRIES:
        return outcome
    session.delete(row)
    audit.record(
        session,
        action="auth.totp_locked",
        actor=user.username,
        target_type="user",
        target_id=user.id,
        details={"ip": ip, "failures": row.totp_failures},
    )
    return LoginOutcome(failure=reason, locked=True)


def record_logout(session: Session, *, username: str, ip: str | None, token: str | None) -> None:
    """Log out: the session's row goes, so no copy of the cookie works any more."""
    if token:
        sessions.end(session, token)
    audit.record(session, action="auth.logout", actor=username, details={"ip": ip})


def record_lockout(session: Session, *, username: str, scope: str, ip: str | None) -> None:
    """A login throttle just closed (see failover/web/auth.py); the name is kept only if it is an account's."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    _audit_attempt(session, "auth.locked", user, {"ip": ip, "scope": scope})


# -- second factor ----------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str = TOTP_ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def enable_totp(session: Session, *, user_id: int, secret: str, code: str, box: SecretBox, keep: str | None) -> Account:
    """Turn the second factor on once the person proved their authenticator shows the right codes.

    The secret is stored sealed; the person's other sessions end, ``keep`` carries on.
    """
    if not re.fullmatch(r"[A-Z2-7]{32}", secret):
        raise InvalidRequest("the enrolment expired; start again")
    user = _by_id(session, user_id, lock=True)
    step = _matching_step(secret, code, after=None)
    if step is None:
        raise InvalidRequest("that code does not match; check the time on your phone and try the next code")
    user.totp_secret, user.totp_last_step = box.seal(secret), step
    ended = _end_all(session, user, keep=keep)
    _audit_user(session, "user.totp_enabled", user.username, user, {"sessions_ended": ended})
    return account_of(user)


def disable_totp(session: Session, *, user_id: int, password: str, keep: str | None, ip: str | None) -> Account | None:
    """Turn the second factor off, the password asked again (None: it was wrong, audited)."""
    user = _by_id(session, user_id, lock=True)
    if not _verify(user.password_hash, password):
        _reauth_failed(session, user, "second factor off", ip)
        return None
    user.totp_secret, user.totp_last_step = None, None
    ended = _end_all(session, user, keep=keep)
    _audit_user(session, "user.totp_disabled", user.username, user, {"sessions_ended": ended})
    return account_of(user)


def seal_totp_secrets(session: Session, *, box: SecretBox) -> tuple[int, int]:
    """Seal clear secrets from before sealing and reseal those under an older key: (sealed, resealed).

    A secret no configured key opens is left alone (and logged): it is not ours to destroy.
    """
    sealed = resealed = 0
    for user in session.scalars(select(User).where(User.totp_secret.is_not(None)).with_for_update()):
        stored = str(user.totp_secret)
        try:
            replacement = box.reseal(stored)
        except SecretUnreadable:
            log.error("the TOTP secret of user %s cannot be opened with FAILOVER_TOTP_KEY; left as it is", user.id)
            continue
        if replacement is not None:
            user.totp_secret = replacement
            resealed += box.is_sealed(stored)
            sealed += not box.is_sealed(stored)
    return sealed, resealed


def _matching_step(secret: str, code: str, *, after: int | None) -> int | None:
    """The time step (of now, or one either side for clock drift) whose code matches, if any."""
    code = (code or "").replace(" ", "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    for step in (now - 1, now, now + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# -- helpers ------------------------------------------------------------------------


def _logged_in(session: Session, user: User, ip: str | None, *, totp: bool) -> LoginOutcome:
    user.last_login_at = utcnow()
    token = sessions.start(session, user_id=user.id, ip=ip)
    audit.record(
        session,
        action="auth.login",
        actor=user.username,
        target_type="user",
        target_id=user.id,
        details={"ip": ip, "totp": totp, "role": user.role},
    )
    return LoginOutcome(account_of(user), token=token)


def _failed(session: Session, user: User | None, reason: str, ip: str | None) -> LoginOutcome:
    _audit_attempt(session, "auth.login_failed", user, {"ip": ip, "reason": reason})
    return LoginOutcome(failure=reason)


def _audit_attempt(session: Session, action: str, user: User | None, details: dict[str, Any]) -> None:
    """An attempt against an account, or against a name that is none (not recorded: it may be a password)."""
    audit.record(
        session,
        action=action,
        actor=user.username if user is not None else "anonymous",
        target_type="user" if user is not None else None,
        target_id=user.id if user is not None else None,
        details=details,
    )


def _reauth_failed(session: Session, user: User, form: str, ip: str | None) -> None:
    audit.record(
        session,
        action="auth.reauth_failed",
        actor=user.username,
        target_type="user",
        target_id=user.id,
        details={"ip": ip, "form": form},
    )


def _end_all(session: Session, user: User, *, keep: str | None = None) -> int:
    return sessions.end_all(session, user_id=user.id, keep=keep)


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(f"a password has at most {MAX_PASSWORD} characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")


def _keep_an_admin(session: Session, leaving: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.disabled.is_(False), User.id != leaving.id)
    )
    if not others:
        raise InvalidRequest(f"'{leaving.username}' is the last enabled admin; make another admin first")


def _by_name(session: Session, username: str, *, lock: bool = False) -> User:
    query = select(User).where(User.username == username)
    user = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if user is None:
        raise NotFound(f"no user '{username}'")
    return user


def _by_id(session: Session, user_id: int, *, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    user = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _audit_user(session: Session, action: str, actor: str, user: User, extra: dict[str, Any] | None = None) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        target_type="user",
        target_id=user.id,
        details={"username": user.username, **(extra or {})},
    )
