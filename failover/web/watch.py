"""Console actions on the watcher: an operator confirms an outage by hand (resolving is the incident's stand-down).

Confirming sends: each runbook whose trigger names the service is activated.
So the button first shows what would go out (the same preview as the trigger
form) and only a second, explicit confirm carrying the preview's fingerprint
does it; a preview that no longer matches is shown again.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import ConfirmOutageForm, form_problems
from failover.web.views import runtime

bp = Blueprint("watch", __name__)


@bp.post("/watch/confirm")
@requires("operator")
def confirm():  # type: ignore[no-untyped-def]
    form = ConfirmOutageForm()
    if not form.validate_on_submit():
        raise InvalidRequest(form_problems(form))
    rt = runtime()
    plan = rt.detection.confirm_preview(service=form.service.data, reason=form.reason.data)
    if form.confirm.data != "yes" or form.fingerprint.data != plan.preview.fingerprint:
        changed = form.confirm.data == "yes"
        if changed:
            flash("What confirming sends changed since your preview. Check it again.", "warning")
        form.confirm.data, form.fingerprint.data = "yes", plan.preview.fingerprint
        return render_template("confirm_outage.html", form=form, plan=plan), 409 if changed else 200
    result = rt.detection.confirm_outage(service=plan.service, actor=actor(), reason=form.reason.data)
    if result["opened"] is not None:
        flash(f"Outage confirmed: incident {result['opened']} opened, matching runbooks activated.", "info")
        return redirect(url_for("console.incident", incident_id=result["opened"]))
    flash("Outage confirmed by hand: " + "; ".join(result["transitions"] or ["the service was already in an incident"]))
    return redirect(url_for("console.dashboard") + "#watch")
