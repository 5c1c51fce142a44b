"""One's own account: log out, change the password, enrol or remove a TOTP authenticator."""

from __future__ import annotations

from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from markupsafe import Markup

from failover.engine import users
from failover.errors import InvalidRequest
from failover.web.access import client_ip, end_session, principal, requires, start_session
from failover.web.forms import PasswordChangeForm, TotpDisableForm, TotpEnrolForm
from failover.web.views import read, runtime, transact

bp = Blueprint("account", __name__)


def _user_id() -> int:
    who = principal()
    assert who is not None and who.user_id is not None
    return who.user_id


@bp.post("/logout")
@requires("viewer")
def logout():  # type: ignore[no-untyped-def]
    who = principal()
    assert who is not None
    transact(users.record_logout, username=who.actor, ip=client_ip())
    end_session()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))


def _page(status: int = 200, **forms: object):  # type: ignore[no-untyped-def]
    context = {"password_form": PasswordChangeForm(), "disable_form": TotpDisableForm(), **forms}
    return render_template("account.html", me=read(users.get, _user_id()), **context), status


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
    try:
        updated = transact(users.change_password, user_id=_user_id(), current=form.current.data, new=form.new.data)
    except InvalidRequest as exc:
        form.new.errors = [str(exc)]
        return _page(400, password_form=form)
    start_session(updated)  # other sessions of this account end; this one carries on
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
    if request.method == "GET" or "totp_enrol" not in session:
        session["totp_enrol"] = users.new_totp_secret()
    secret = str(session["totp_enrol"])
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                updated = transact(users.enable_totp, user_id=me.id, secret=secret, code=form.code.data)
            except InvalidRequest as exc:
                form.code.errors = [str(exc)]
                status = 400
            else:
                session.pop("totp_enrol", None)
                start_session(updated)
                flash("Two-step login is on: from now on you need a code from your authenticator.", "info")
                return redirect(url_for("account.account"))
        else:
            status = 400
    issuer = f"failover ({urlsplit(runtime().settings.public_url).hostname})"
    uri = users.provisioning_uri(secret, me.username, issuer)
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).to_string(encoding="unicode")
    return render_template("totp_enrol.html", form=form, qr=Markup(svg), secret=secret, uri=uri), status


@bp.post("/account/totp/disable")
@requires("viewer")
def totp_disable():  # type: ignore[no-untyped-def]
    form = TotpDisableForm()
    if not form.validate_on_submit():
        return _page(400, disable_form=form)
    try:
        updated = transact(users.disable_totp, user_id=_user_id(), password=form.password.data)
    except InvalidRequest as exc:
        form.password.errors = [str(exc)]
        return _page(400, disable_form=form)
    start_session(updated)
    flash("Two-step login is off.", "info")
    return redirect(url_for("account.account"))
