"""Staff talking back, on the web side: poll tallies and export on the activation page, close a poll,
and the status page's "Report a problem" button (public, throttled per client).

Views stay thin: engine.polls and engine.staff_reports decide; the panel is a
context function (``activation_polls``) so the live activation page redraws it.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from failover.clock import utcnow
from failover.engine import bridge, polls, staff_reports
from failover.errors import InvalidRequest
from failover.web.access import actor, client_ip, public, requires
from failover.web.forms import ConfirmForm
from failover.web.views import csrf, read, runtime

bp = Blueprint("talkback", __name__)
MAX_SERVICE = 100


def report_services() -> list[str]:
    """The services the status page's "Report a problem" form offers (none unless detection.yaml allows web reports)."""
    config = runtime().config.detection_loaded().config
    policy = staff_reports.policy_of(config)
    return list(config.watch) if config is not None and policy is not None and policy.web else []


@bp.app_context_processor
def _panels() -> dict[str, object]:
    def activation_polls(activation_id: int) -> list[dict[str, object]]:
        return read(polls.tallies, runtime().config.catalog_or_none(), activation_id)

    def incident_bridges(incident_id: int) -> list[dict[str, object]]:
        return read(bridge.incident_bridges, runtime().config.catalog_or_none(), incident_id)

    return {
        "activation_polls": activation_polls,
        "incident_bridges": incident_bridges,
    }


@bp.get("/activations/<id:activation_id>/polls/<step>.csv")
@requires("viewer")
def poll_csv(activation_id: int, step: str):  # type: ignore[no-untyped-def]
    text = read(polls.export_csv, runtime().config.catalog_or_none(), activation_id, step[:32])
    name = f"activation-{activation_id}-poll-{step[:32]}.csv"
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/activations/<id:activation_id>/polls/<step>/close")
@requires("operator")
def poll_close(activation_id: int, step: str):  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        raise InvalidRequest("the form expired: reload the page and try again")
    rt = runtime()
    with rt.database.transaction() as session:
        polls.close(
            session,
            activation_id=activation_id,
            step=step[:32],
            actor=actor(),
            now=utcnow(),
            catalog=rt.config.catalog(),
        )
    flash("Poll closed: later answers get a reply saying so and are not counted.", "info")
    return redirect(url_for("console.activation", activation_id=activation_id))


@bp.post("/status/report")
@public
@csrf.exempt
def report_problem():  # type: ignore[no-untyped-def]
    """The status page's "Report a problem": one report per client per window counts (domain.staff_reports)."""
    service = (request.form.get("service") or "").strip()[:MAX_SERVICE] or None
    received = runtime().talkback.report_from_web(client=client_ip() or "unknown", service=service)
    if received is None:
        return _answer("Thanks. Reports cannot be counted right now; please tell IT directly.", 503)
    status = 429 if received.action == "throttled" else 400 if received.action == "unclear" else 200
    return _answer(received.text or "Thanks - your report is counted.", status)


def _answer(text: str, status: int):  # type: ignore[no-untyped-def]
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return jsonify(message=text), status
    return render_template("report_thanks.html", message=text), status
