"""Provider webhooks: Twilio and Vonage receipts and inbound SMS, Twilio keypresses; SendGrid events. Public, signed.

No login and no CSRF token (providers cannot send either): every request must
carry the provider's signature instead. Anything unsigned, forged, stale or
unreadable is refused with a 4xx that says why, and the refusal is audited;
nothing a provider sends can cause a 500 here.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from failover import inputs
from failover.channels import sendgrid_events, twilio_webhooks, vonage_webhooks
from failover.clock import utcnow
from failover.errors import WebhookRejected
from failover.web.views import csrf, runtime

log = logging.getLogger(__name__)

bp = Blueprint("provider_webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

TWIML = "text/xml"


def _verify_twilio() -> None:
    runtime().tracking.verify_twilio(
        path=request.path,
        query=request.query_string.decode("latin-1"),
        params=request.form,
        signature=request.headers.get(twilio_webhooks.SIGNATURE_HEADER),
        called_url=request.url,
    )


def _rejected(endpoint: str, exc: WebhookRejected):  # type: ignore[no-untyped-def]
    log.warning("refused %s webhook (%d): %s", endpoint, exc.status, exc.reason)
    runtime().audit.webhook_rejected(
        endpoint=endpoint, reason=exc.reason, status=exc.status, remote=request.remote_addr
    )
    return jsonify(error=exc.reason, status=exc.status), exc.status


@bp.post("/twilio/status")
def twilio_status():  # type: ignore[no-untyped-def]
    """Message and call status callbacks (``StatusCallback``), one receipt each."""
    try:
        _verify_twilio()
        event = twilio_webhooks.parse_status(request.form, request.args)
    except WebhookRejected as exc:
        return _rejected("twilio/status", exc)
    runtime().tracking.accept([event])  # queued (applied by a worker), or applied now without the queue
    return Response(status=204)


@bp.post("/twilio/inbound")
def twilio_inbound():  # type: ignore[no-untyped-def]
    """An SMS to our number; the answer (if any) goes back as TwiML."""
    try:
        _verify_twilio()
        message = twilio_webhooks.parse_inbound(request.form)
    except WebhookRejected as exc:
        return _rejected("twilio/inbound", exc)
    outcome = runtime().tracking.inbound_sms(message)
    return Response(twilio_webhooks.message_reply(outcome.text), mimetype=TWIML)


@bp.post("/twilio/voice")
def twilio_voice():  # type: ignore[no-untyped-def]
    """A keypress during a voice alert: 1 acknowledges."""
    try:
        _verify_twilio()
        keypress = twilio_webhooks.parse_keypress(request.form, request.args)
    except WebhookRejected as exc:
        return _rejected("twilio/voice", exc)
    acknowledged = runtime().tracking.keypress(keypress)
    again = f"{runtime().settings.public_url}{request.path}?{request.query_string.decode('latin-1')}"
    return Response(twilio_webhooks.voice_answer(acknowledged, None if acknowledged else again), mimetype=TWIML)


def _vonage_params() -> dict[str, object]:
    """Vonage's parameters (GET query, form or JSON POST), verified with its signature secret."""
    json_body = None
    if request.is_json:
        try:
            json_body = inputs.load_json(request.get_data(cache=True))  # bounded depth: no RecursionError
        except inputs.InputError as exc:
            raise WebhookRejected(f"the body: {exc}", status=400) from None
    params = vonage_webhooks.params_of(request.args, request.form, json_body)
    runtime().tracking.vonage_verifier.verify(params, utcnow())
    return params


@bp.route("/vonage/status", methods=["GET", "POST"])
def vonage_status():  # type: ignore[no-untyped-def]
    """A Vonage delivery receipt (SMS API), for the ledger row named in client-ref."""
    try:
        event = vonage_webhooks.parse_status(_vonage_params())
    except WebhookRejected as exc:
        return _rejected("vonage/status", exc)
    if event is not None:
        runtime().tracking.accept([event])
    return Response(status=204)


@bp.route("/vonage/inbound", methods=["GET", "POST"])
def vonage_inbound():  # type: ignore[no-untyped-def]
    """An SMS to our Vonage number: the same reply handling as Twilio's; the answer goes out as an SMS."""
    try:
        message = vonage_webhooks.parse_inbound(_vonage_params())
    except WebhookRejected as exc:
        return _rejected("vonage/inbound", exc)
    outcome = runtime().tracking.inbound_sms(message)
    if outcome.text:
        runtime().delivery.answer_sms(message, outcome.text)
    return Response(status=204)


@bp.post("/sendgrid/events")
def sendgrid_event_batch():  # type: ignore[no-untyped-def]
    """A batch of SendGrid events, verified over the exact raw body."""
    body = request.get_data(cache=True)
    try:
        runtime().tracking.sendgrid_verifier.verify(
            body,
            request.headers.get(sendgrid_events.SIGNATURE_HEADER),
            request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
            utcnow(),
        )
        events = sendgrid_events.parse_events(body)
    except WebhookRejected as exc:
        return _rejected("sendgrid/events", exc)
    recorded = runtime().tracking.accept(events)
    if recorded is None:  # queued: a worker applies them
        return jsonify(received=len(events), queued=len(events)), 202
    return jsonify(
        received=len(events),
        applied=recorded.applied,
        duplicates=recorded.duplicates,
        ignored=recorded.ignored + recorded.unknown,
    )
