"""Working an open incident: add runbooks to it, and send its people an update. Operators only.

Both follow the trigger's rule: a POST without a confirmed preview (or whose
preview's fingerprint no longer matches what would be sent) shows the
preview; only a confirm of the preview as shown sends, through the ledger.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, flash, redirect, render_template, request, url_for

from failover.engine import queries, trigger
from failover.engine.updates import Update
from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import AddRunbookForm, UpdateForm
from failover.web.views import read, runtime

bp = Blueprint("incident_work", __name__)

DEFAULT_SUBJECT = "Update: {{ incident.title }}"
DEFAULT_TEXT = "Update on {{ incident.title }}. Expected back: {{ eta }}. Latest news: {{ status_url }}"


@bp.route("/incidents/<id:incident_id>/runbooks", methods=["GET", "POST"])
@requires("operator")
def add_runbooks(incident_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    catalog = rt.config.catalog()
    incident = read(queries.incident_detail, incident_id)
    present = read(trigger.added_to, incident_id)
    form = AddRunbookForm()
    form.runbook.choices = list(catalog.runbooks)  # the form offers only those not present (a resubmit is fine)
    titles = {r.id: r.title for r in catalog.runbooks.values()}
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        page = render_template("incident_runbooks.html", incident=incident, form=form, titles=titles, present=present)
        return page, status
    request_args = {"runbook_ids": form.runbook.data, "reason": form.reason.data, "override": form.override.data}
    preview = rt.activations.add_runbooks_preview(incident_id=incident_id, actor=actor(), **request_args)
    if form.confirm.data != "yes" or form.fingerprint.data != preview.fingerprint:
        changed = form.confirm.data == "yes"
        if changed:
            flash("What would be sent changed since your preview (contacts or templates). Check it again.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", preview.fingerprint
        page = render_template("incident_runbooks.html", incident=incident, form=form, titles=titles, preview=preview)
        return page, 409 if changed else 200
    accepted, broker_ok = rt.activations.trigger(incident_id=incident_id, actor=actor(), **request_args)
    if any(not item.created for item in accepted):
        flash("Already part of this incident: nothing was sent again.", "info")
    elif not broker_ok:
        flash("Queued, broker unreachable: messages go out as soon as it is back.", "warning")
    return redirect(url_for("console.incident", incident_id=incident_id))


@bp.route("/incidents/<id:incident_id>/update", methods=["GET", "POST"])
@requires("operator")
def update(incident_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    incident = read(queries.incident_detail, incident_id)
    starters = rt.activations.update_templates()
    form = UpdateForm()
    if request.method == "GET":
        chosen = request.args.get("template") or next(iter(starters), "")
        form.text.data = starters.get(chosen, DEFAULT_TEXT)
        form.subject.data = DEFAULT_SUBJECT
        form.status_url.data = rt.settings.public_url.rstrip("/") + "/status"
        form.key.data = secrets.token_hex(16)  # this form, sent once however often it is submitted
        return render_template("incident_update.html", incident=incident, form=form, starters=starters)
    if not form.validate_on_submit():
        page = render_template("incident_update.html", incident=incident, form=form, starters=starters)
        return page, 400
    wanted = Update(
        audience=form.audience.data,
        channels=tuple(form.channels.data or ()),
        subject=form.subject.data,
        text=form.text.data,
        eta=form.eta.data or "",
        status_url=form.status_url.data or "",
    )
    try:
        preview = rt.activations.update_preview(incident_id=incident_id, update=wanted)
    except InvalidRequest as exc:  # a template that does not render, an SMS too long
        flash(str(exc), "error")
        return render_template("incident_update.html", incident=incident, form=form, starters=starters), 400
    confirmed = form.confirm.data == "yes" and "preview" not in request.form
    if not confirmed or form.fingerprint.data != preview.fingerprint:
        changed = confirmed
        if changed:
            flash("What the update would send changed since your preview. Check it again.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", preview.fingerprint
        page = render_template("incident_update.html", incident=incident, form=form, starters=starters, preview=preview)
        return page, 409 if changed else 200
    accepted, broker_ok = rt.activations.send_update(
        incident_id=incident_id, update=wanted, request_key=form.key.data, actor=actor()
    )
    if not accepted.created:
        flash("This update was already sent: nothing was sent again.", "info")
    elif not broker_ok:
        flash("Update queued, broker unreachable: it goes out as soon as it is back.", "warning")
    else:
        flash("Update on its way.", "info")
    return redirect(url_for("console.incident", incident_id=incident_id))
