"""Break-glass login: local accounts, an optional TOTP second step, throttled failures.

Failed attempts (answered 401) count against ``FAILOVER_LOGIN_RATE_LIMIT``
per client address and account name (Flask-Limiter, moving window); once it
is reached the login answers 429 until the window has passed, even for the
right password. Successful logins cost nothing. The counters live in Redis
(``Settings.shared_redis_url``: ``FAILOVER_REDIS_URL``, else a Redis broker),
shared by every web process, and in memory otherwise; if Redis is
unreachable the limiter falls back to memory
rather than locking everyone out on the worst day. Every login, failure and
logout is audited (see :mod:`failover.engine.users`).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_limiter import Limiter, RateLimitExceeded
from flask_login import current_user

from failover.clock import utcnow
from failover.engine import users
from failover.web.access import client_ip, public, safe_next, start_session
from failover.web.forms import LoginForm, TotpForm
from failover.web.views import transact

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
PENDING_TTL_S = 300  # between the password and the code


def _throttle_key() -> str:
    pending = session.get("pending_login") or {}
    name = request.form.get("username") or pending.get("username") or ""
    return f"{client_ip()}|{name.strip().lower()[:64]}"


def init_app(app: Flask, *, settings: Any) -> None:
    limiter = Limiter(
        key_func=_throttle_key,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        strategy="moving-window",
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        key_prefix="failover-login",
    )
    limiter.shared_limit(
        settings.login_rate_limit,
        scope="login",
        methods=["POST"],
        deduct_when=lambda response: response.status_code == 401,
    )(bp)
    app.extensions["failover.limiter"] = limiter
    app.register_blueprint(bp)


def _next() -> str:
    return safe_next(request.values.get("next")) or url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(_next())
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400 if request.method == "POST" else 200
    outcome = transact(
        users.check_password, username=form.username.data.strip(), password=form.password.data, ip=client_ip()
    )
    if outcome.account is None:
        return render_template("login.html", form=form, failed=True), 401
    if outcome.needs_totp:
        target = _next()
        session.clear()
        session["pending_login"] = {
            "id": outcome.account.id,
            "username": outcome.account.username,
            "at": utcnow().timestamp(),
        }
        return redirect(url_for("auth.totp", next=target))
    start_session(outcome.account)
    return redirect(_next())


@bp.route("/login/totp", methods=["GET", "POST"])
@public
def totp():  # type: ignore[no-untyped-def]
    pending = session.get("pending_login")
    if not pending or utcnow().timestamp() - float(pending.get("at", 0)) > PENDING_TTL_S:
        session.pop("pending_login", None)
        flash("Enter your password again.", "warning")
        return redirect(url_for("auth.login", next=safe_next(request.values.get("next"))))
    form = TotpForm()
    if not form.validate_on_submit():
        return render_template("totp.html", form=form), 400 if request.method == "POST" else 200
    outcome = transact(users.check_totp, user_id=int(pending["id"]), code=form.code.data, ip=client_ip())
    if outcome.account is None:
        return render_template("totp.html", form=form, failed=True), 401
    start_session(outcome.account)
    return redirect(_next())


@bp.errorhandler(RateLimitExceeded)
def _throttled(exc: RateLimitExceeded):  # type: ignore[no-untyped-def]
    log.warning("login throttled for %s after repeated failures", client_ip())
    template = "totp.html" if request.endpoint == "auth.totp" else "login.html"
    form = TotpForm() if template == "totp.html" else LoginForm()
    return render_template(template, form=form, throttled=True), 429
