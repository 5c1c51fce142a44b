"""The on-call console: dashboard, trigger form with preview and confirm, progress, approvals, stand-down, outbox.

Every view declares its role (see :mod:`failover.web.access`): viewers read,
operators trigger, approve and stand down.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from failover.engine import auditlog, detection_view, overview, queries, roster
from failover.errors import InvalidRequest
from failover.web import health
from failover.web.access import actor, requires
from failover.web.forms import ActivateForm, ConfirmForm, StandDownForm
from failover.web.views import read, runtime

bp = Blueprint("console", __name__)


@bp.get("/")
@requires("viewer")
def dashboard():  # type: ignore[no-untyped-def]
    rt = runtime()
    data = read(overview.overview)
    settings = rt.settings
    channels = {
        name: {"transport": channel.transport, "ready": channel.transport != "outbox"}
        for name, channel in rt.channels.items()
    }
    readiness = {
        "sms": "Twilio" if settings.twilio_enabled else "outbox (TWILIO_* not set)",
        "email": "SendGrid" if settings.sendgrid_enabled else "outbox (SENDGRID_* not set)",
        "status": "fallback status page",
    }
    return render_template(
        "dashboard.html",
        channels=channels,
        readiness=readiness,
        problems=health.problems(),
        watch=rt.watch_overview(),
        form=ConfirmForm(),
        **data,
    )


@bp.route("/activate", methods=["GET", "POST"])
@requires("operator")
def activate():  # type: ignore[no-untyped-def]
    rt = runtime()
    catalog = rt.catalog()
    form = ActivateForm()
    form.runbook.choices = [(r.id, r.title) for r in catalog.runbooks.values()]
    known = dict.fromkeys(s for r in catalog.runbooks.values() for s in r.trigger.services)
    form.services.choices = [(s, s) for s in known]
    if request.method == "GET" and request.args.get("runbook"):
        form.runbook.data = request.args.getlist("runbook")
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("activate.html", form=form, catalog=catalog), status
    request_args = {
        "runbook_ids": form.runbook.data,
        "reason": form.reason.data,
        "actor": actor(),
        "services": form.chosen_services(),
        "drill": form.drill.data,
        "override": form.override.data,
    }
    try:
        preview = rt.trigger_preview(**request_args)
    except InvalidRequest as exc:  # e.g. a drill of a runbook without a drill group, an SMS too long
        flash(str(exc), "error")
        return render_template("activate.html", form=form, catalog=catalog), 400
    if form.confirm.data != "yes" or form.fingerprint.data != preview.fingerprint:
        changed = form.confirm.data == "yes"
        if changed:
            flash("What would be sent changed since your preview (contacts or templates). Check it again.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", preview.fingerprint
        page = render_template("preview.html", form=form, preview=preview, catalog=catalog)
        return page, 409 if changed else 200
    accepted, broker_ok = rt.trigger(**request_args)
    if not broker_ok:
        flash("Queued, broker unreachable: messages go out as soon as it is back.", "warning")
    waiting = [a.activation_id for a in accepted if a.state == "pending_approval"]
    if waiting:
        flash(
            "Waiting for a second operator to approve activation "
            + ", ".join(f"#{n}" for n in waiting)
            + ": nothing of it is sent before then.",
            "warning",
        )
    if len(accepted) == 1:
        return redirect(url_for("console.activation", activation_id=accepted[0].activation_id))
    return redirect(url_for("console.incident", incident_id=accepted[0].incident_id))


@bp.get("/activations/<id:activation_id>")
@requires("viewer")
def activation(activation_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        detail = queries.activation_detail(session, activation_id)
        people = roster.roster(session, activation_id, rt.catalog_or_none())
    return render_template("activation.html", a=detail, roster=people, form=ConfirmForm())


@bp.get("/activations/<id:activation_id>.json")
@requires("viewer")
def activation_json(activation_id: int):  # type: ignore[no-untyped-def]
    return jsonify(read(queries.activation_progress, activation_id))


@bp.get("/activations/<id:activation_id>/roster.json")
@requires("viewer")
def roster_json(activation_id: int):  # type: ignore[no-untyped-def]
    """Who was reached and who answered, live (the page polls it)."""
    rt = runtime()
    with rt.database.reading() as session:
        return jsonify(roster.roster(session, activation_id, rt.catalog_or_none()))


@bp.get("/activations/<id:activation_id>/roster.csv")
@requires("viewer")
def roster_csv(activation_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        text = roster.roster_csv(roster.roster(session, activation_id, rt.catalog_or_none()))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="activation-{activation_id}-roster.csv"'},
    )


@bp.post("/activations/<id:activation_id>/approve")
@requires("operator")
def approve(activation_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the approval form is incomplete")
    _, broker_ok = runtime().approve(activation_id=activation_id, actor=actor())
    flash("Approved: the messages are on their way." if broker_ok else "Approved; broker unreachable, queued.", "info")
    return redirect(url_for("console.activation", activation_id=activation_id))


@bp.post("/activations/<id:activation_id>/cancel")
@requires("operator")
def cancel(activation_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the cancel form is incomplete")
    runtime().cancel(activation_id=activation_id, actor=actor(), reason="withdrawn in the console")
    flash("Withdrawn: nothing of it was sent.", "info")
    return redirect(url_for("console.activation", activation_id=activation_id))


@bp.get("/incidents")
@requires("viewer")
def incidents():  # type: ignore[no-untyped-def]
    return render_template("incidents.html", incidents=read(queries.incidents, limit=200))


@bp.get("/incidents/<id:incident_id>")
@requires("viewer")
def incident(incident_id: int):  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        detail = queries.incident_detail(session, incident_id)
        evidence = detection_view.incident_evidence(session, incident_id)
        timeline = auditlog.timeline(session, incident_id)
    return render_template("incident.html", incident=detail, evidence=evidence, timeline=timeline)


@bp.route("/incidents/<id:incident_id>/resolve", methods=["GET", "POST"])
@requires("operator")
def resolve(incident_id: int):  # type: ignore[no-untyped-def]
    """GET shows what standing down sends (the preview); POST with that preview's fingerprint does it.

    The all-clear can be edited or skipped; a POST whose choice or text no longer matches the
    preview it carries is shown again instead of sent.
    """
    rt = runtime()
    form = StandDownForm()
    valid = request.method == "POST" and form.validate_on_submit()
    choice = {"all_clear": form.send_all_clear, "override": form.override.data} if valid else {}
    stand_down = rt.stand_down_preview(incident_id=incident_id, actor=actor(), **choice)
    fingerprint = stand_down.preview.fingerprint
    confirmed = valid and form.confirm.data == "yes" and "preview" not in request.form
    if not confirmed or form.fingerprint.data != fingerprint:
        changed = confirmed
        if changed:
            flash("What standing down sends changed since your preview. Check it again, then confirm.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", fingerprint
        detail = read(queries.incident_detail, incident_id)
        page = render_template("stand_down.html", incident=detail, plan=stand_down, form=form)
        status = 200 if request.method == "GET" or (valid and not changed) else 409 if changed else 400
        return page, status
    _, broker_ok = rt.resolve(incident_id=incident_id, actor=actor(), note=form.note.data or "", **choice)
    done = "the all-clear is on its way" if form.send_all_clear else "no all-clear sent, as you chose"
    flash(
        f"Stood down: {done}." if broker_ok else f"Stood down ({done}); broker unreachable, queued.",
        "info" if broker_ok else "warning",
    )
    return redirect(url_for("console.incident", incident_id=incident_id))


@bp.get("/outbox")
@requires("viewer")
def outbox():  # type: ignore[no-untyped-def]
    return render_template("outbox.html", messages=read(queries.outbox))
