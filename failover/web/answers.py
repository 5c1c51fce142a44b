"""Operators act for the people an activation asked: acknowledge on someone's behalf, pause or cancel escalation.

Both are small forms on the activation page (``_ack_on_behalf.html`` and
``_escalation_controls.html``), operator-only and audited with who did it.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for

from failover.engine import escalation
from failover.errors import InvalidRequest
from failover.web.access import actor, requires
from failover.web.forms import AckOnBehalfForm, EscalationForm
from failover.web.views import read, runtime

bp = Blueprint("answers", __name__)

DONE = {
    "paused": "Escalation paused: nothing is escalated until you resume it.",
    "active": "Escalation resumed: entries that fell due meanwhile fire at the next sweep.",
    "cancelled": "Escalation cancelled: it never fires for this activation.",
}


@bp.app_context_processor
def _panels() -> dict[str, object]:
    def activation_controls(activation_id: int) -> dict[str, object]:
        return read(escalation.controls, activation_id)

    return {"activation_controls": activation_controls}


@bp.post("/activations/<id:activation_id>/acknowledge")
@requires("operator")
def acknowledge(activation_id: int):  # type: ignore[no-untyped-def]
    form = AckOnBehalfForm()
    if not form.validate_on_submit():
        raise InvalidRequest("; ".join(f"{name}: {', '.join(errors)}" for name, errors in form.errors.items()))
    person = form.person.data.strip()
    runtime().tracking.acknowledge_on_behalf(
        activation_id=activation_id, person_id=person, actor=actor(), note=form.note.data
    )
    flash(f"Recorded: {person} acknowledged (on their behalf, by you).", "info")
    return redirect(url_for("console.activation", activation_id=activation_id))


@bp.post("/activations/<id:activation_id>/escalation")
@requires("operator")
def steer(activation_id: int):  # type: ignore[no-untyped-def]
    form = EscalationForm()
    if not form.validate_on_submit():
        raise InvalidRequest("choose pause, resume or cancel")
    state = runtime().tracking.steer_escalation(activation_id=activation_id, action=form.action.data, actor=actor())
    flash(DONE[state], "info")
    return redirect(url_for("console.activation", activation_id=activation_id))
