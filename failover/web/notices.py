"""Status-page notices by hand: operators post, edit and close them; viewers read the list."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from failover.engine import notices
from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import ConfirmForm, NoticeForm
from failover.web.views import read, transact

bp = Blueprint("notices", __name__)


@bp.get("/notices")
@requires("viewer")
def index():  # type: ignore[no-untyped-def]
    return render_template("notices.html", notices=read(notices.list_notices, limit=200), form=ConfirmForm())


@bp.route("/notices/new", methods=["GET", "POST"])
@requires("operator")
def new():  # type: ignore[no-untyped-def]
    form = NoticeForm()
    if request.method == "GET" and request.args.get("incident", "").isdigit():
        form.incident_id.data = int(request.args["incident"])
    if not form.validate_on_submit():
        return render_template("notice_form.html", form=form, notice=None), 400 if request.method == "POST" else 200
    try:
        notice = transact(
            notices.post,
            title=form.title.data,
            body=form.body.data,
            severity=form.severity.data,
            incident_id=form.incident_id.data,
            actor=actor(),
        )
    except InvalidRequest as exc:
        form.body.errors = [str(exc)]
        return render_template("notice_form.html", form=form, notice=None), 400
    flash(f"Notice #{notice.id} is on the status page.", "info")
    return redirect(url_for("notices.index"))


@bp.route("/notices/<id:notice_id>/edit", methods=["GET", "POST"])
@requires("operator")
def edit(notice_id: int):  # type: ignore[no-untyped-def]
    current = read(notices.get, notice_id)
    form = NoticeForm(data=current if request.method == "GET" else None)
    del form.incident_id  # a notice stays with its incident
    if not form.validate_on_submit():
        return render_template("notice_form.html", form=form, notice=current), 400 if request.method == "POST" else 200
    try:
        transact(
            notices.edit,
            notice_id=notice_id,
            title=form.title.data,
            body=form.body.data,
            severity=form.severity.data,
            actor=actor(),
        )
    except InvalidRequest as exc:
        form.body.errors = [str(exc)]
        return render_template("notice_form.html", form=form, notice=current), 400
    flash(f"Notice #{notice_id} updated.", "info")
    return redirect(url_for("notices.index"))


@bp.post("/notices/<id:notice_id>/close")
@requires("operator")
def close(notice_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the form is incomplete")
    transact(notices.close, notice_id=notice_id, actor=actor())
    flash(f"Notice #{notice_id} closed; the status page shows it under recent history.", "info")
    return redirect(url_for("notices.index"))
