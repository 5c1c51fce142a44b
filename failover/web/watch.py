"""Console actions on the watcher: an operator confirms an outage by hand (resolving is the incident's stand-down)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for

from failover.web.access import actor, requires
from failover.web.views import runtime

bp = Blueprint("watch", __name__)


@bp.post("/watch/confirm")
@requires("operator")
def confirm():  # type: ignore[no-untyped-def]
    # CSRF is checked globally (views.csrf); a missing service or reason is a 400/404 from the use case.
    result = runtime().confirm_outage(
        service=request.form.get("service", ""), actor=actor(), reason=request.form.get("reason", "")
    )
    if result["opened"] is not None:
        flash(f"Outage confirmed: incident {result['opened']} opened, matching runbooks activated.", "info")
        return redirect(url_for("console.incident", incident_id=result["opened"]))
    flash("Outage confirmed by hand: " + "; ".join(result["transitions"] or ["the service was already in an incident"]))
    return redirect(url_for("console.dashboard") + "#watch")
