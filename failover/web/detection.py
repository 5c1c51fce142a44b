"""Outage detection on the web: inbound signals from other monitors, and confirming an outage by hand.

``POST /webhooks/signals`` (blueprint ``signals``) is public but HMAC-signed: the
body is read raw (the signature covers the exact bytes) and handed to
``rt.detection``; anything unsigned or malformed is audited and answered with a
4xx naming what is wrong (see failover/sources/signals.py for the shapes).

``POST /watch/confirm`` (blueprint ``watch``): an operator confirms an outage by
hand (resolving is the incident's stand-down). Confirming sends: each runbook
whose trigger names the service is activated. So the button first shows what
would go out (the same preview as the trigger form) and only a second,
explicit confirm carrying the preview's fingerprint does it; a preview that no
longer matches is shown again.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from failover.errors import InvalidRequest
from failover.sources.signals import SIGNATURE_HEADER, SignalRejected
from failover.web.access import actor, requires
from failover.web.forms import ConfirmOutageForm, form_problems
from failover.web.views import csrf, runtime

signals_bp = Blueprint("signals", __name__)
watch_bp = Blueprint("watch", __name__)


@signals_bp.post("/webhooks/signals")
@csrf.exempt
def receive():  # type: ignore[no-untyped-def]
    result = runtime().detection.receive_signals(
        body=request.get_data(cache=False),
        signature=request.headers.get(SIGNATURE_HEADER),
        source=request.args.get("source"),
        remote=request.remote_addr,
    )
    return jsonify(result), 202


@signals_bp.errorhandler(SignalRejected)
def _rejected(exc: SignalRejected):  # type: ignore[no-untyped-def]
    return jsonify(error=exc.message, status=exc.status), exc.status


@watch_bp.post("/watch/confirm")
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
