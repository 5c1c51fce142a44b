"""The on-call console: dashboard, trigger form with preview and confirm, progress, approvals, stand-down, outbox.

Every view declares its role (see :mod:`failover.web.access`): viewers read,
operators trigger, approve and stand down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select

from failover.channels.chat import ChatChannel
from failover.clock import utcnow
from failover.domain import planning
from failover.domain.labels import step_label, transport_name
from failover.domain.runbooks import Catalog
from failover.engine import activation_view, auditlog, overview, queries, roster
from failover.engine.detection import view as detection_view
from failover.errors import Conflict, InvalidRequest
from failover.models import Activation, ActivationState
from failover.web import health
from failover.web.access import actor, principal, requires
from failover.web.forms import ActivateForm, ApproveForm, ConfirmForm, StandDownForm
from failover.web.views import read, runtime

bp = Blueprint("console", __name__)


@bp.app_context_processor
def _waiting_approvals() -> dict[str, Any]:
    """The header says when activations wait for a second operator, on every page."""
    if principal() is None:
        return {"waiting_approvals": 0}
    if "waiting_approvals" not in g:  # once per request, however many templates it renders
        with runtime().database.reading() as session:
            count = session.scalar(select(func.count()).where(Activation.state == ActivationState.PENDING_APPROVAL))
        g.waiting_approvals = int(count or 0)
    return {"waiting_approvals": g.waiting_approvals}


@bp.get("/")
@requires("viewer")
def dashboard():  # type: ignore[no-untyped-def]
    rt = runtime()
    data = read(overview.overview)
    settings = rt.settings
    channels = {
        name: {"transport": channel.transport, "ready": channel.transport != "outbox"}
        for name, channel in rt.delivery.channels.items()
    }
    circuits = rt.delivery.guard.circuits()

    def health_of(transport: str) -> str:
        state = circuits.get(transport)
        return f"{transport_name(transport)} ({'DOWN: circuit open' if state and state.open else 'up'})"

    order = settings.sms_provider_order
    chat = rt.delivery.channels.get("chat")
    room_count = len(chat.rooms()[0].names()) if isinstance(chat, ChatChannel) else 0
    readiness = {
        "sms": ", then ".join(health_of(p) for p in order) if order else "outbox (TWILIO_* / VONAGE_* not set)",
        "email": health_of("sendgrid") if settings.sendgrid_enabled else "outbox (SENDGRID_* not set)",
        "status": "fallback status page",
        "chat": f"{room_count} room(s) in config/chat.yaml" if room_count else "no rooms (config/chat.yaml)",
    }
    return render_template(
        "dashboard.html",
        channels=channels,
        readiness=readiness,
        problems=health.problems(),
        watch=rt.detection.overview(),
        status_targets=rt.status.targets(),
        form=ConfirmForm(),
        **data,
    )


@bp.route("/activate", methods=["GET", "POST"])
@requires("operator")
def activate():  # type: ignore[no-untyped-def]
    rt = runtime()
    catalog = rt.config.catalog()
    form = ActivateForm()
    form.runbook.choices = [(r.id, r.title) for r in catalog.runbooks.values()]
    known = dict.fromkeys(s for r in catalog.runbooks.values() for s in r.trigger.services)
    form.services.choices = [(s, s) for s in known]
    if request.method == "GET" and request.args.get("runbook"):
        form.runbook.data = request.args.getlist("runbook")
    books = _runbook_cards(catalog)
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("activate.html", form=form, books=books), status
    request_args = {
        "runbook_ids": form.runbook.data,
        "reason": form.reason.data,
        "actor": actor(),
        "services": form.chosen_services(),
        "drill": form.drill.data,
        "override": form.override.data,
        "message": form.message.data,
    }
    try:
        preview = rt.activations.preview(**request_args)
    except InvalidRequest as exc:  # e.g. a drill of a runbook without a drill group, an SMS too long
        flash(str(exc), "error")
        return render_template("activate.html", form=form, books=books), 400
    if form.confirm.data != "yes" or form.fingerprint.data != preview.fingerprint:
        changed = form.confirm.data == "yes"
        if changed:
            flash("What would be sent changed since your preview (contacts or templates). Check it again.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", preview.fingerprint
        page = render_template("preview.html", form=form, preview=preview)
        return page, 409 if changed else 200
    accepted, broker_ok = rt.activations.trigger(**request_args)
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


def _runbook_cards(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What each runbook says and whom it reaches, for the trigger form: "Step 1 · SMS to oncall: 3 people"."""
    cards = {}
    for runbook in catalog.runbooks.values():
        steps = []
        for index, step in enumerate(runbook.steps):
            people = len(planning.expand(catalog, step.to)) if step.channel != "status" else None
            steps.append({"label": step_label(f"steps.{index}", step.channel, runbook), "people": people})
        cards[runbook.id] = {"runbook": runbook, "steps": steps}
    return cards


@bp.get("/activations/<id:activation_id>")
@requires("viewer")
def activation(activation_id: int):  # type: ignore[no-untyped-def]
    data = _activation_view(activation_id)
    approval = None
    if data["a"]["state"] == ActivationState.PENDING_APPROVAL:
        try:
            approval = runtime().activations.approval_preview(activation_id=activation_id)
        except (InvalidRequest, Conflict) as exc:  # the runbook is gone, or a template no longer renders
            flash(f"This activation cannot be previewed: {exc}", "error")
    form = ApproveForm(fingerprint=approval.fingerprint if approval else "")
    return render_template("activation.html", approval=approval, form=form, withdraw=ConfirmForm(), **data)


@bp.get("/activations/<id:activation_id>/live.json")
@requires("viewer")
def activation_live(activation_id: int):  # type: ignore[no-untyped-def]
    """What the open page polls: only a version when nothing changed, else the counts and the parts to redraw."""
    rt = runtime()
    with rt.database.reading() as session:
        version = activation_view.version(session, activation_id, utcnow())
    if request.args.get("v") == version:
        return jsonify({"version": version, "changed": False})
    data = _activation_view(activation_id)
    parts = {
        name: render_template(f"_activation_{name}.html", **data)
        for name in ("counts", "failures", "polls", "people", "escalations", "detail")
    }
    return jsonify(
        {
            "version": data["version"],
            "changed": True,
            "live": data["live"],
            "done": data["a"]["done"],
            "state": data["a"]["state"],
            "progress": data["tiles"],
            "failures": data["failures"]["total"],
            "html": parts,
        }
    )


def _activation_view(activation_id: int) -> dict[str, Any]:
    rt = runtime()
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        raise InvalidRequest("page must be a number") from None
    with rt.database.reading() as session:
        return activation_view.view(
            session,
            activation_id,
            rt.config.catalog_or_none(),
            now=utcnow(),
            show=request.args.get("show", "all"),
            query=request.args.get("q", "")[:100],
            page=page,
            escalation_limit=rt.settings.escalation_limit,
        )


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
        return jsonify(roster.roster(session, activation_id, rt.config.catalog_or_none()))


@bp.get("/activations/<id:activation_id>/roster.csv")
@requires("viewer")
def roster_csv(activation_id: int):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        text = roster.roster_csv(roster.roster(session, activation_id, rt.config.catalog_or_none()))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="activation-{activation_id}-roster.csv"'},
    )


@bp.post("/activations/<id:activation_id>/approve")
@requires("operator")
def approve(activation_id: int):  # type: ignore[no-untyped-def]
    """Approve what the approver saw: a preview that no longer matches is shown again instead of sent."""
    rt = runtime()
    current = rt.activations.approval_preview(
        activation_id=activation_id
    )  # an unknown or settled activation: 404 / 409
    form = ApproveForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the approval form is incomplete: open the activation and approve from its preview")
    if current.fingerprint != form.fingerprint.data:
        flash("What approving sends changed since you read it (contacts or templates). Read it again.", "warning")
        return redirect(url_for("console.activation", activation_id=activation_id) + "#approval"), 303
    _, broker_ok = rt.activations.approve(activation_id=activation_id, actor=actor())
    flash("Approved: the messages are on their way." if broker_ok else "Approved; broker unreachable, queued.", "info")
    return redirect(url_for("console.activation", activation_id=activation_id))


@bp.post("/activations/<id:activation_id>/cancel")
@requires("operator")
def cancel(activation_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("the cancel form is incomplete")
    runtime().activations.cancel(activation_id=activation_id, actor=actor(), reason="withdrawn in the console")
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
    stand_down = rt.activations.stand_down_preview(incident_id=incident_id, actor=actor(), **choice)
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
    _, broker_ok = rt.activations.resolve(incident_id=incident_id, actor=actor(), note=form.note.data or "", **choice)
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
