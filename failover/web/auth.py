"""Break-glass login: local accounts, an optional TOTP second step, throttled failures.

One throttle (:mod:`failover.web.login_throttle`) guards every way a password
or code is checked: the login form, the same request with a JSON body, the
TOTP step, and the forms that ask for the current password again (password
change, second factor off). It is keyed on the client address the server
sees and on the account the server resolved (the name that was checked, or
for the TOTP step the pending login's account, kept in the database); never
on a field the client could vary. Behind a reverse proxy, set
``FAILOVER_TRUSTED_PROXIES`` to the number of proxies so that the address
is the real client's (werkzeug's ProxyFix); without it X-Forwarded-For is
ignored. Successes cost nothing; each failure counts under:

* **client and account** (``FAILOVER_LOGIN_RATE_LIMIT``, 5 a minute, 30 an
  hour): then this client is refused for this account, right password or not.
* **client** (``FAILOVER_LOGIN_CLIENT_LIMIT``, 10 a minute, 60 an hour):
  password spraying across accounts from one address; then this client is
  refused for every account.
* **account** (``FAILOVER_LOGIN_ACCOUNT_LIMIT``, 10 in 15 minutes) and
  **everyone** (``FAILOVER_LOGIN_GLOBAL_LIMIT``, 100 in 15 minutes): guessing
  from many addresses. These lock out only *suspect* clients, those that
  failed themselves in the last 15 minutes; a client with a clean record is
  still checked, so the right password (and code) gets its owner in.
  That is the choice against lock-outs: an attacker can only ever lock out
  the addresses that fail, never an account, so nobody can keep anyone
  locked out by failing on purpose. The price: while an account or the whole
  service is under attack, each address gets one guess per 15 minutes, which
  for 12-character passwords hashed with argon2 is not a way in.
* **second factor**: wrong codes lock the pending login after 5
  (``users.TOTP_TRIES``; counted in the database, so a replayed cookie does
  not reset them; audited ``auth.totp_locked``): the password is asked again.
  Per account, 10 wrong codes an hour lock the second step for every client
  (only someone holding the password can get there; an admin setting a new
  password stops them, and the lock lapses within the hour).

A refused attempt answers 429 and is never checked, so it leaves no audit row;
each limit is audited once, as ``auth.locked`` with its scope, when it
closes. The counters live in Redis when there is one (shared by every web
process) and in memory otherwise. Every login, failure and logout is audited
(see :mod:`failover.engine.users`).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from failover.engine import users
from failover.settings import Settings
from failover.web.access import client_ip, public, safe_next, start_session
from failover.web.forms import LoginForm, TotpForm
from failover.web.login_throttle import Limits, LoginThrottle
from failover.web.views import read, runtime, transact

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def init_app(app: Flask, *, settings: Settings) -> None:
    limits = Limits(
        pair=settings.login_rate_limit,
        client=settings.login_client_limit,
        account=settings.login_account_limit,
        everyone=settings.login_global_limit,
    )
    app.extensions["failover.login_throttle"] = LoginThrottle(settings.rate_limit_storage_uri, limits)
    app.register_blueprint(bp)


def throttle() -> LoginThrottle:
    return current_app.extensions["failover.login_throttle"]  # type: ignore[no-any-return]


def refused(account: str, *, second_factor: bool = False) -> str | None:
    """Why this request may not check a password or code for ``account`` now (None: go ahead)."""
    scope = throttle().refusal(client_ip() or "", account, second_factor=second_factor)
    if scope is not None:
        log.warning("login throttled for %s (%s)", client_ip(), scope)
    return scope


def count_failure(account: str, *, second_factor: bool = False) -> None:
    """Count a wrong password or code; audit each limit it closes."""
    ip = client_ip()
    for scope in throttle().failed(ip or "", account, second_factor=second_factor):
        transact(users.record_lockout, username=account, scope=scope, ip=ip)


def _next() -> str:
    return safe_next(request.values.get("next")) or url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()  # Flask-WTF reads a JSON body as well as a form: both come through here
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(_next())
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400 if request.method == "POST" else 200
    username = form.username.data.strip()
    if refused(username):
        return render_template("login.html", form=LoginForm(), throttled=True), 429
    outcome = transact(users.check_password, username=username, password=form.password.data, ip=client_ip())
    if outcome.account is None or outcome.token is None:
        count_failure(username)
        return render_template("login.html", form=form, failed=True), 401
    if outcome.needs_totp:
        target = _next()
        session.clear()
        session["pending_login"] = outcome.token
        return redirect(url_for("auth.totp", next=target))
    start_session(outcome.account, outcome.token)
    return redirect(_next())


def _again():  # type: ignore[no-untyped-def]
    session.pop("pending_login", None)
    return redirect(url_for("auth.login", next=safe_next(request.values.get("next"))))


@bp.route("/login/totp", methods=["GET", "POST"])
@public
def totp():  # type: ignore[no-untyped-def]
    token = session.get("pending_login")
    pending = read(users.pending_login, token) if isinstance(token, str) else None
    if pending is None:
        flash("Enter your password again.", "warning")
        return _again()
    form = TotpForm()
    if not form.validate_on_submit():
        return render_template("totp.html", form=form), 400 if request.method == "POST" else 200
    if refused(pending.username, second_factor=True):
        return render_template("totp.html", form=TotpForm(), throttled=True), 429
    outcome = transact(
        users.check_totp, token=token, code=form.code.data, ip=client_ip(), box=runtime().accounts.totp_box
    )
    if outcome.account is None or outcome.token is None:
        count_failure(pending.username, second_factor=True)
        if outcome.locked:
            flash("Too many wrong codes. Enter your password again.", "error")
            return _again()
        return render_template("totp.html", form=form, failed=True), 401
    start_session(outcome.account, outcome.token)
    return redirect(_next())
