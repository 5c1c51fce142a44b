"""The status page in the console: incidents, updates and maintenance with a preview, publishing, subscribers.

Under /statuspage (the public page is /status): operators post, always
through one preview that shows the text as the page renders it and who will
be told; admins see, export and remove subscribers and add webhooks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from failover.domain import statuspage as sp
from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import ConfirmForm
from failover.web.views import runtime

bp = Blueprint("statuspage", __name__)
FIELDS = ("kind", "title", "body", "impact", "progress", "scheduled_for", "scheduled_until", "notice_id")


@bp.get("/statuspage")
@requires("viewer")
def index():  # type: ignore[no-untyped-def]
    status = runtime().status
    view = status.view()
    counts: dict[str, int] = {}
    for row in status.subscribers(state="confirmed"):
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return render_template(
        "statuspage_console.html",
        v=view,
        page=status.page(),
        targets=status.targets(),
        counts=counts,
        form=ConfirmForm(),
        states=sp.COMPONENT_STATES,
        labels=sp.COMPONENT_LABELS,
        progress=sp.PROGRESS_LABELS,
        incident_progress=sp.INCIDENT_PROGRESS,
        maintenance_progress=sp.MAINTENANCE_PROGRESS,
        values={},
        error=None,
    )


@bp.post("/statuspage/post")
@requires("operator")
def post():  # type: ignore[no-untyped-def]
    """The first submit shows the preview; the second (confirm=yes, same fields) posts."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the form expired; reload the page")
    status = runtime().status
    values = {name: request.form.get(name, "") for name in FIELDS}
    raw_id = values["notice_id"]
    notice_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 9 else None
    try:
        item = status.draft(
            kind=values["kind"] or "incident",
            title=values["title"],
            body=values["body"],
            impact=values["impact"] or ("" if notice_id else "major"),
            progress=values["progress"] or None,
            components=_components(),
            scheduled_for=_when(values["scheduled_for"], "start"),
            scheduled_until=_when(values["scheduled_until"], "end"),
            need_title=notice_id is None,
        )
        preview = status.preview(item, notice_id=notice_id)
    except InvalidRequest as exc:
        return render_template("statuspage_preview.html", error=str(exc), values=values, form=form, preview=None), 400
    if request.form.get("confirm") != "yes":
        chosen = {k: v for k, v in request.form.items() if k.startswith("component:")}
        return render_template(
            "statuspage_preview.html", error=None, values=values, chosen=chosen, form=form, preview=preview
        )
    if notice_id is None:
        notice_id = status.open_incident(item=item, actor=actor())
        flash(f"Incident #{notice_id} is on the status page; subscribers are being told.", "info")
    else:
        status.post_update(notice_id=notice_id, item=item, actor=actor())
        flash(f"Update posted on #{notice_id}; subscribers are being told.", "info")
    return redirect(url_for("statuspage.index"))


@bp.get("/statuspage/subscribers")
@requires("admin")
def subscribers():  # type: ignore[no-untyped-def]
    rows = runtime().status.subscribers()
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "kind", "address", "components", "state", "created_at", "confirmed_at"])
        for r in rows:
            components = ";".join(r["components"] or [])
            confirmed = r["confirmed_at"].isoformat() if r["confirmed_at"] else ""
            row = [r["id"], r["kind"], _cell(r["address"]), _cell(components), r["state"], r["created_at"].isoformat()]
            writer.writerow([*row, confirmed])
        response = Response(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = "attachment; filename=status-subscribers.csv"
        return response
    return render_template("statuspage_subscribers.html", rows=rows, form=ConfirmForm(), key=None)


@bp.post("/statuspage/subscribers/<id:subscriber_id>/remove")
@requires("admin")
def remove(subscriber_id: int):  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        raise InvalidRequest("the form expired; reload the page")
    runtime().status.remove_subscriber(subscriber_id=subscriber_id, actor=actor())
    flash(f"Subscriber #{subscriber_id} removed.", "info")
    return redirect(url_for("statuspage.subscribers"))


@bp.post("/statuspage/webhooks")
@requires("admin")
def add_webhook():  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the form expired; reload the page")
    subscriber_id, key = runtime().status.add_webhook(url=request.form.get("url", ""), components=None, actor=actor())
    rows = runtime().status.subscribers()
    return render_template("statuspage_subscribers.html", rows=rows, form=form, key=(subscriber_id, key))


def _components() -> dict[str, str]:
    return {
        name.removeprefix("component:"): state
        for name, state in request.form.items()
        if name.startswith("component:") and state and state != "unchanged"
    }


def _when(value: str, what: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidRequest(f"the {what} is not a date and time (UTC) such as 2026-12-05T22:00") from None


def _cell(value: Any) -> str:
    """CSV cells that a spreadsheet would run as formulas are quoted as text."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
