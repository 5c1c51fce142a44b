"""The Readiness page: ``failover doctor`` in the console, with the canary history. Admins only."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from failover.web.access import requires_for_blueprint
from failover.web.forms import ConfirmForm
from failover.web.views import runtime

bp = Blueprint("readiness", __name__, url_prefix="/admin/readiness")
requires_for_blueprint(bp, "admin")


@bp.get("")
def page():  # type: ignore[no-untyped-def]
    settings = runtime().settings
    return render_template(
        "readiness.html",
        report=runtime().readiness.report(),
        canaries=runtime().readiness.canary_history(),
        targets=settings.canary_targets,
        interval=settings.canary_interval,
        form=ConfirmForm(),
    )


@bp.post("/canaries")
def run_canaries():  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form expired; try again.", "warning")
        return redirect(url_for("readiness.page"))
    if not any(runtime().settings.canary_targets.values()):
        flash("No canary targets: set FAILOVER_CANARY_SMS and/or FAILOVER_CANARY_EMAIL.", "warning")
        return redirect(url_for("readiness.page"))
    result = runtime().readiness.canary_start()
    flash(f"{len(result.started)} canary message(s) sent; {len(result.failed)} refused at once.", "info")
    return redirect(url_for("readiness.page"))
