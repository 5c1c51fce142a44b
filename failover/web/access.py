"""Who may call what: one default-deny gate in front of every request.

``init_app`` installs a ``before_request`` hook that decides every request:

1. **Public allow-list.** ``/login`` (and ``/login/...``), ``/status``,
   ``/status.json``, ``/status/...``, ``/healthz``, ``/readyz``, ``/static/...``
   and ``/webhooks/...`` pass without a login. Webhooks are public because
   their providers sign them: each webhook view must verify the signature
   itself (and be exempt from CSRF, as the providers send no token).
2. **Declared roles.** Any other view must say who may call it, either on the
   view with ``@requires("viewer" | "operator" | "admin")`` or once for a whole
   blueprint with ``requires_for_blueprint(bp, "viewer")`` (a view's own
   decorator wins). Roles are ordered: admin > operator > viewer.
3. **Default deny.** A view that declares nothing is refused to everyone
   (403, logged as an error), and the route x role matrix test
   (tests/integration/test_access.py) fails until the route has a row in it.
   A route nobody thought about fails closed.

Who is calling: the console session (Flask-Login over local accounts, never
Microsoft sign-in), or under ``/api/`` a bearer token
(``Authorization: Bearer fo_...``, see :mod:`failover.engine.tokens`), which
acts as the person who owns it: never with more than their current role,
and not at all while they are disabled. The API also accepts the console
session for GET requests, so a logged-in person can open
``/api/v1/openapi.json``; never for other methods, since the API has no CSRF
tokens. Anonymous pages redirect to ``/login?next=...``; anonymous JSON gets
401; a role too low gets 403.

Sessions live in the database (:mod:`failover.engine.sessions`): the cookie
only carries a random token, looked up on every request, so a session the
server ended is over for every copy of the cookie. They end at logout, after
``FAILOVER_SESSION_TIMEOUT`` seconds without a request, and whatever the
activity ``FAILOVER_SESSION_MAX_AGE`` seconds after login. Changing one's own
password or second factor ends the account's other sessions (the one in use
carries on); a password set by an admin, a role change, a second-factor reset
and disabling the account end all of them. The cookie is HttpOnly,
SameSite=Lax and, when ``FAILOVER_PUBLIC_URL`` is https, Secure with the
``__Host-`` prefix; every answer then also carries HSTS.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from failover.domain.roles import ROLE_RANK
from failover.engine import sessions, tokens, users
from failover.runtime import Runtime
from failover.settings import Settings
from failover.web.errors import answer, wants_json

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/status", "/status.json", "/healthz", "/readyz"})
PUBLIC_PREFIXES = ("/login/", "/status/", "/static/", "/webhooks/")

F = TypeVar("F", bound=Callable[..., Any])
_ROLE_ATTR = "_failover_role"
_blueprint_roles: dict[str, str] = {}


@dataclass(frozen=True)
class Principal:
    """The caller of this request, whichever way they authenticated."""

    actor: str  # what the audit log records
    role: str
    via: str  # "session" | "token"
    user_id: int | None = None


class ConsoleUser(UserMixin):  # type: ignore[misc]
    def __init__(self, account: users.Account, token: str) -> None:
        self.account = account
        self.username = account.username
        self.role = account.role
        self.token = token

    def get_id(self) -> str:
        # What Flask-Login keeps in the cookie: the session's token, looked up on every request.
        return self.token


def requires(role: str) -> Callable[[F], F]:
    """Declare the least role a view needs."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: F) -> F:
        setattr(view, _ROLE_ATTR, role)
        return view

    return mark


def public(view: F) -> F:
    """Declare a view public although its path is not on the allow-list."""
    setattr(view, _ROLE_ATTR, "public")
    return view


def requires_for_blueprint(bp: Blueprint, role: str) -> None:
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    _blueprint_roles[bp.name] = role


def is_public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def required_role(endpoint: str | None, app: Flask | None = None) -> str | None:
    """The role an endpoint declares ("public" included), or None when it declares nothing."""
    app = app or current_app
    if endpoint is None:
        return None
    view = app.view_functions.get(endpoint)
    declared = getattr(view, _ROLE_ATTR, None)
    if declared is not None:
        return str(declared)
    blueprint = endpoint.rpartition(".")[0]
    return _blueprint_roles.get(blueprint)


def principal() -> Principal | None:
    return g.get("principal")


def actor() -> str:
    """The audit actor of this request; only called from views the gate let through."""
    who = principal()
    assert who is not None, "actor() outside an authenticated request"
    return who.actor


def has_role(role: str) -> bool:
    who = principal()
    return who is not None and ROLE_RANK[who.role] >= ROLE_RANK[role]


def client_ip() -> str | None:
    return request.remote_addr


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def start_session(account: users.Account, token: str) -> None:
    """Put a session the engine opened into a fresh cookie (nothing carried over from before login)."""
    session.clear()
    login_user(ConsoleUser(account, token))
    session.permanent = True


def session_token() -> str | None:
    """The token of this request's console session, if it has one."""
    return current_user.token if current_user.is_authenticated else None


def end_session() -> None:
    logout_user()
    session.clear()


def init_app(app: Flask, *, runtime: Runtime, settings: Settings) -> None:
    secure = settings.public_url.startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="__Host-failover" if secure else "failover_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.session_timeout),
        SESSION_REFRESH_EACH_REQUEST=True,
        REMEMBER_COOKIE_DURATION=dt.timedelta(seconds=0),
    )
    idle, max_age = settings.session_timeout, settings.session_max_age
    hsts = "max-age=31536000" if secure else None
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.init_app(app)

    @manager.user_loader
    def _load(token: str) -> ConsoleUser | None:
        with runtime.database.reading() as db:
            live = sessions.load(db, token, idle=idle, max_age=max_age)
            if live is None:
                return None  # ended, idle too long, too old, or the account is disabled
            account = users.account_of(live.user)
        if live.stale:
            with runtime.database.transaction() as db:
                sessions.touch(db, session_id=live.id)
        return ConsoleUser(account, token)

    @app.before_request
    def _gate() -> Any:
        g.principal = None
        if is_public_path(request.path):
            return None
        if request.endpoint is None:
            g.principal = _identify(runtime)  # for the page chrome only
            return None  # no route matched: let the 404 / 405 answer
        role = required_role(request.endpoint, app)
        if role == "public":
            return None
        if role is None:
            log.error("endpoint %s declares no role; refused (see failover/web/access.py)", request.endpoint)
            return _deny(403, "this page declares no access rule, so nobody may use it")
        who = _identify(runtime)
        if who is None:
            return _anonymous()
        g.principal = who
        if ROLE_RANK[who.role] < ROLE_RANK[role]:
            return _deny(403, f"this needs the {role} role; you are {who.role}")
        return None

    @app.after_request
    def _headers(response: Any) -> Any:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        if g.get("principal") is not None:
            headers["Cache-Control"] = "no-store"
        if hsts:
            headers.setdefault("Strict-Transport-Security", hsts)
        return response

    @app.context_processor
    def _template_helpers() -> dict[str, Any]:
        return {"has_role": has_role, "principal": principal}


def _identify(runtime: Runtime) -> Principal | None:
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        if header:
            return _bearer(runtime, header)
        if request.method not in ("GET", "HEAD"):
            return None
    if not current_user.is_authenticated:
        return None
    user: ConsoleUser = current_user  # type: ignore[assignment]
    return Principal(user.username, user.role, "session", user.account.id)


def _bearer(runtime: Runtime, header: str) -> Principal | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with runtime.database.reading() as db:
        found = tokens.authenticate(db, token.strip())
        stale = found is not None and tokens.needs_touch(db, found.id)
    if found is None:
        return None
    if stale:
        with runtime.database.transaction() as db:
            tokens.touch(db, token_id=found.id)
    return Principal(found.actor, found.role, "token")  # user_id stays None: a token has no account page


def _anonymous() -> Any:
    if wants_json():
        response = jsonify(error="authentication required", status=401)
        response.status_code = 401
        if request.path.startswith("/api/"):
            response.headers["WWW-Authenticate"] = 'Bearer realm="failover"'
        return response
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def _deny(status: int, message: str) -> Any:
    return answer(status, message)
