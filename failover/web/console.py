"""The on-call console: dashboard, trigger form with preview and confirm, progress, outbox."""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from failover.engine import detection_view, queries, roster
from failover.web import health
from failover.web.forms import ActivateForm, ConfirmForm
from failover.web.views import runtime

bp = Blueprint("console", __name__)


def actor() -> str:
    return "console"


@bp.get("/")
def dashboard():  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        data = {
            "incidents": queries.incidents(session, open_only=True),
            "activations": queries.recent_activations(session, limit=15),
        }
    data["watch"] = rt.watch_overview()
    channels = {name: channel.transport for name, channel in rt.channels.items()}
    return render_template("dashboard.html", channels=channels, problems=health.problems(), **data)


@bp.route("/activate", methods=["GET", "POST"])
def activate():  # type: ignore[no-untyped-def]
    rt = runtime()
    catalog = rt.catalog()
    form = ActivateForm()
    form.runbook.choices = [(r.id, f"{r.title} ({r.id})") for r in catalog.runbooks.values()]
    if request.method == "GET" and request.args.get("runbook"):
        form.runbook.data = request.args["runbook"]
    if not form.validate_on_submit():
        return render_template("activate.html", form=form, catalog=catalog), 400 if request.method == "POST" else 200
    services = [s.strip() for s in (form.services.data or "").split(",") if s.strip()]
    request_args = {
        "runbook_id": form.runbook.data,
        "reason": form.reason.data,
        "actor": actor(),
        "services": services,
        "drill": form.drill.data,
        "override": form.override.data,
    }
    if form.confirm.data != "yes":
        plan = rt.preview(**request_args)
        form.confirm.data = "yes"
        return render_template("preview.html", form=form, plan=plan, runbook=catalog.runbook(form.runbook.data))
    accepted, broker_ok = rt.activate(**request_args)
    if not broker_ok:
        flash("Queued, broker unreachable: messages go out as soon as it is back.", "warning")
    return redirect(url_for("console.activation", activation_id=accepted.activation_id))


@bp.get("/activations/<int:activation_id>")
def activation(activation_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        detail = queries.activation_detail(session, activation_id)
        people = roster.roster(session, activation_id, rt.catalog_or_none())
    return render_template("activation.html", a=detail, roster=people)


@bp.get("/activations/<int:activation_id>.json")
def activation_json(activation_id: int):  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        return jsonify(queries.activation_progress(session, activation_id))


@bp.get("/activations/<int:activation_id>/roster.json")
def roster_json(activation_id: int):  # type: ignore[no-untyped-def]
    """Who was reached and who answered, live (the page polls it)."""
    rt = runtime()
    with rt.database.reading() as session:
        return jsonify(roster.roster(session, activation_id, rt.catalog_or_none()))


@bp.get("/activations/<int:activation_id>/roster.csv")
def roster_csv(activation_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        text = roster.roster_csv(roster.roster(session, activation_id, rt.catalog_or_none()))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="activation-{activation_id}-roster.csv"'},
    )


@bp.get("/incidents/<int:incident_id>")
def incident(incident_id: int):  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        detail = queries.incident_detail(session, incident_id)
        evidence = detection_view.incident_evidence(session, incident_id)
    return render_template("incident.html", incident=detail, evidence=evidence, form=ConfirmForm())


@bp.post("/incidents/<int:incident_id>/resolve")
def resolve(incident_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("console.incident", incident_id=incident_id))
    _, broker_ok = runtime().resolve(incident_id=incident_id, actor=actor())
    flash(
        "Stood down: the all-clear is on its way."
        if broker_ok
        else "Stood down; all-clear queued, broker unreachable.",
        "info" if broker_ok else "warning",
    )
    return redirect(url_for("console.incident", incident_id=incident_id))


@bp.get("/outbox")
def outbox():  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        messages = queries.outbox(session)
    return render_template("outbox.html", messages=messages)
