"""The bridge line's Twilio webhooks: a call to our number (PIN, then the conference) and conference callbacks.

Public but signed, like every provider webhook (web/provider_webhooks.py):
unsigned or forged requests are refused with a 4xx and counted, never acted on.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from failover.channels import twilio_conference
from failover.errors import WebhookRejected
from failover.web.provider_webhooks import TWIML, _rejected, _verify_twilio
from failover.web.views import csrf, runtime

bp = Blueprint("bridge_webhooks", __name__)
csrf.exempt(bp)


@bp.post(twilio_conference.BRIDGE_PATH)
@bp.post(twilio_conference.PIN_PATH)
def bridge_call():  # type: ignore[no-untyped-def]
    """A call to our number: the PIN prompt, then the bridge the PIN opens."""
    try:
        _verify_twilio()
        call = twilio_conference.parse_incoming(request.form)
    except WebhookRejected as exc:
        return _rejected("twilio/bridge", exc)
    return Response(runtime().talkback.incoming_call(call), mimetype=TWIML)


@bp.post(twilio_conference.CONFERENCE_PATH)
def conference_status():  # type: ignore[no-untyped-def]
    """Twilio's conference status callbacks: who joined and left."""
    try:
        _verify_twilio()
        event = twilio_conference.parse_event(request.form)
    except WebhookRejected as exc:
        return _rejected("twilio/conference", exc)
    runtime().talkback.conference_event(event)
    return Response(status=204)
