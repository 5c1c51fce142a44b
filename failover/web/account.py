"""One's own account: log out, change the password, enrol or remove a TOTP authenticator.

Logging out deletes the session's row; a password or second-factor change
ends the account's other sessions and keeps this one. The forms that ask for
the current password again go through the login throttle (see
failover/web/auth.py): wrong answers are counted and audited like logins.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from markupsafe import Markup

from failover.engine import users
from failover.errors import InvalidRequest
from failover.secretbox import SecretBox, SecretUnreadable
from failover.web.access import client_ip, end_session, principal, requires, session_token
from failover.web.auth import count_failure, refused
from failover.web.forms import PasswordChangeForm, TotpDisableForm, TotpEnrolForm
from failover.web.views import read, runtime, transact

bp = Blueprint("account", __name__)


def _user_id() -> int:
    who = principal()
    assert who is not None and who.user_id is not None
    return who.user_id


def _username() -> str:
    who = principal()
    assert who is not None
    return who.actor


@bp.post("/logout")
@requires("viewer")
def logout():  # type: ignore[no-untyped-def]
    who = principal()
    assert who is not None
    transact(users.record_logout, username=who.actor, ip=client_ip(), token=session_token())
    end_session()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))


def _page(status: int = 200, **forms: object):  # type: ignore[no-untyped-def]
    context = {"password_form": PasswordChangeForm(), "disable_form": TotpDisableForm(), **forms}
    return render_template("account.html", me=read(users.get, _user_id()), **context), status


def _throttled(**forms: object):  # type: ignore[no-untyped-def]
    flash("Too many wrong passwords from here. Wait a few minutes, then try again.", "error")
    return _page(429, **forms)


@bp.get("/account")
@requires("viewer")
def account():  # type: ignore[no-untyped-def]
    return _page()


@bp.post("/account/password")
@requires("viewer")
def password():  # type: ignore[no-untyped-def]
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _page(400, password_form=form)
    me = _username()
    if refused(me):
        return _throttled(password_form=form)
    try:
        updated = transact(
            users.change_password,
            user_id=_user_id(),
            current=form.current.data,
            new=form.new.data,
            keep=session_token(),
            ip=client_ip(),
        )
    except InvalidRequest as exc:
        form.new.errors = [str(exc)]
        return _page(400, password_form=form)
    if updated is None:
        count_failure(me)
        form.current.errors = ["the current password is wrong"]
        return _page(400, password_form=form)
    flash("Password changed. Other sessions of this account are logged out.", "info")
    return redirect(url_for("account.account"))


@bp.route("/account/totp", methods=["GET", "POST"])
@requires("viewer")
def totp():  # type: ignore[no-untyped-def]
    me = read(users.get, _user_id())
    assert me is not None
    if me.totp:
        flash("Two-step login is already on. Remove it first to enrol another authenticator.", "info")
        return redirect(url_for("account.account"))
    form = TotpEnrolForm()
    box = runtime().accounts.totp_box
    secret = _enrolling(box) if request.method == "POST" else None
    if secret is None:
        secret = users.new_totp_secret()
        # Sealed in the cookie too: Flask's session cookie is signed, not encrypted.
        session["totp_enrol"] = box.seal(secret)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                transact(
                    users.enable_totp,
                    user_id=me.id,
                    secret=secret,
                    code=form.code.data,
                    box=box,
                    keep=session_token(),
                )
            except InvalidRequest as exc:
                form.code.errors = [str(exc)]
                status = 400
            else:
                session.pop("totp_enrol", None)
                flash("Two-step login is on: from now on you need a code from your authenticator.", "info")
                return redirect(url_for("account.account"))
        else:
            status = 400
    issuer = f"failover ({urlsplit(runtime().settings.public_url).hostname})"
    uri = users.provisioning_uri(secret, me.username, issuer)
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).to_string(encoding="unicode")
    return render_template("totp_enrol.html", form=form, qr=Markup(svg), secret=secret, uri=uri), status


def _enrolling(box: SecretBox) -> str | None:
    """The secret being enrolled, from this browser's session."""
    sealed = session.get("totp_enrol")
    if not isinstance(sealed, str) or not box.is_sealed(sealed):
        return None
    try:
        return box.open(sealed)
    except SecretUnreadable:
        return None


@bp.post("/account/totp/disable")
@requires("viewer")
def totp_disable():  # type: ignore[no-untyped-def]
    form = TotpDisableForm()
    if not form.validate_on_submit():
        return _page(400, disable_form=form)
    me = _username()
    if refused(me):
        return _throttled(disable_form=form)
    updated = transact(
        users.disable_totp, user_id=_user_id(), password=form.password.data, keep=session_token(), ip=client_ip()
    )
    if updated is None:
        count_failure(me)
        form.password.errors = ["the password is wrong"]
        return _page(400, disable_form=form)
    flash("Two-step login is off.", "info")
    return redirect(url_for("account.account"))
