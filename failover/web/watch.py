"""Console actions on the watcher: an operator confirms an outage by hand (resolving is the incident's stand-down)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for

from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import WatchConfirmForm, form_problems
from failover.web.views import runtime

bp = Blueprint("watch", __name__)


@bp.post("/watch/confirm")
@requires("operator")
def confirm():  # type: ignore[no-untyped-def]
    # CSRF is checked globally (views.csrf); an unwatched service is a 404 from the use case.
    form = WatchConfirmForm()
    if not form.validate():
        raise InvalidRequest(form_problems(form))
    result = runtime().confirm_outage(service=form.service.data, actor=actor(), reason=form.reason.data)
    if result["opened"] is not None:
        flash(f"Outage confirmed: incident {result['opened']} opened, matching runbooks activated.", "info")
        return redirect(url_for("console.incident", incident_id=result["opened"]))
    flash("Outage confirmed by hand: " + "; ".join(result["transitions"] or ["the service was already in an incident"]))
    return redirect(url_for("console.dashboard") + "#watch")
