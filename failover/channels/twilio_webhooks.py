"""Twilio's side of the webhooks: signatures, callback parameters and TwiML answers.

Every request is checked with the SDK's ``RequestValidator`` against the URL
Twilio was given - ``FAILOVER_PUBLIC_URL`` plus the path and query - never
against the URL this process happens to see behind a proxy. Twilio's
signatures carry no timestamp: a replayed receipt is harmless (receipts only
move forward) and a replayed inbound SMS is dropped by its MessageSid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from failover.channels.callbacks import InboundSMS, Keypress, StatusEvent
from failover.domain.receipts import Progress
from failover.errors import WebhookRejected

SIGNATURE_HEADER = "X-Twilio-Signature"
_SID = re.compile(r"^(SM|MM|CA)[0-9a-f]{32}$")

MESSAGE_PROGRESS = {
    "accepted": Progress.ACCEPTED,
    "scheduled": Progress.ACCEPTED,
    "queued": Progress.ACCEPTED,
    "sending": Progress.SENDING,
    "sent": Progress.SENT,
    "partially_delivered": Progress.SENT,
    "delivered": Progress.DELIVERED,
    "read": Progress.DELIVERED,
    "undelivered": Progress.FAILED,
    "failed": Progress.FAILED,
    "canceled": Progress.FAILED,
}
# A call that was never answered ends busy / no-answer / failed / canceled; "completed" means it was answered.
CALL_PROGRESS = {
    "queued": Progress.ACCEPTED,
    "initiated": Progress.ACCEPTED,
    "ringing": Progress.SENDING,
    "in-progress": Progress.DELIVERED,
    "answered": Progress.DELIVERED,
    "completed": Progress.DELIVERED,
    "busy": Progress.FAILED,
    "no-answer": Progress.FAILED,
    "failed": Progress.FAILED,
    "canceled": Progress.FAILED,
}
ERROR_TEXT = {
    "21211": "invalid 'To' number",
    "21408": "region not enabled",
    "21610": "recipient replied STOP",
    "21614": "not a mobile number",
    "30003": "unreachable handset",
    "30004": "message blocked",
    "30005": "unknown handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier filtering",
    "30008": "unknown error",
}


def verify(
    *,
    auth_token: str | None,
    public_url: str,
    path: str,
    query: str,
    params: Any,
    signature: str | None,
    called_url: str | None = None,
) -> None:
    """Raise ``WebhookRejected`` (403) unless ``signature`` signs this request for our public URL.

    ``params`` is the form (a werkzeug MultiDict or a dict). ``called_url`` is
    the URL as this process saw it; it only serves a clearer error when the
    two differ (a proxy that FAILOVER_PUBLIC_URL does not describe).
    """
    if not auth_token:
        raise WebhookRejected("Twilio webhooks cannot be verified: TWILIO_AUTH_TOKEN is not set")
    if not signature:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER} header")
    url = public_url + path + (f"?{query}" if query else "")
    validator = RequestValidator(auth_token)
    if validator.validate(url, params, signature):
        return
    if called_url and called_url != url and validator.validate(called_url, params, signature):
        raise WebhookRejected(
            "signed for the address this server saw, not for FAILOVER_PUBLIC_URL: set FAILOVER_PUBLIC_URL "
            "to the public address Twilio calls"
        )
    raise WebhookRejected(f"{SIGNATURE_HEADER} does not match this request")


MAX_INBOUND_BODY = 1600  # Twilio's own limit for one (concatenated) message


def _delivery_id(args: Mapping[str, str]) -> int:
    value = args.get("delivery", "")
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise WebhookRejected("the callback URL names no delivery (expected ?delivery=<id>)", status=400)
    return int(value)


def _sid(form: Mapping[str, str], name: str) -> str:
    sid = form.get(name, "")
    if not _SID.match(sid):
        raise WebhookRejected(f"{name} is missing or malformed", status=400)
    return sid


def parse_status(form: Mapping[str, str], args: Mapping[str, str]) -> StatusEvent:
    """A message or call status callback, for the ledger row named in its URL."""
    delivery_id = _delivery_id(args)
    if "MessageSid" in form:
        sid = _sid(form, "MessageSid")
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        progress = MESSAGE_PROGRESS.get(status, Progress.NONE)
    elif "CallSid" in form:
        sid = _sid(form, "CallSid")
        status = (form.get("CallStatus") or "").lower()
        progress = CALL_PROGRESS.get(status, Progress.NONE)
    else:
        raise WebhookRejected("neither MessageSid nor CallSid: not a Twilio status callback", status=400)
    if not status:
        raise WebhookRejected("the callback carries no status", status=400)
    code = form.get("ErrorCode") or None
    if code is not None and not code.isdigit():
        code = None
    if progress == Progress.FAILED and code is None and "CallSid" in form:
        code = status  # busy, no-answer: the status is the reason
    detail = f"{status} {code}: {ERROR_TEXT[code]}" if code in ERROR_TEXT else (f"{status} {code}" if code else status)
    return StatusEvent(
        provider="twilio",
        event_key=f"{sid}:{status}",
        delivery_id=delivery_id,
        provider_id=sid,
        status=status[:24],
        progress=progress,
        error_code=code,
        detail=detail,
    )


def parse_inbound(form: Mapping[str, str]) -> InboundSMS:
    sid = _sid(form, "MessageSid")
    sender = form.get("From", "").strip()
    if not sender or len(sender) > 64:
        raise WebhookRejected("an inbound message without a From number (or one over 64 characters)", status=400)
    body = form.get("Body", "")
    if len(body) > MAX_INBOUND_BODY:
        raise WebhookRejected(f"Body is longer than {MAX_INBOUND_BODY} characters (Twilio's limit)", status=400)
    return InboundSMS(message_sid=sid, sender=sender, body=body)


def parse_keypress(form: Mapping[str, str], args: Mapping[str, str]) -> Keypress:
    delivery_id = _delivery_id(args)
    call_sid = _sid(form, "CallSid")
    digits = form.get("Digits", "")
    if len(digits) > 32:
        raise WebhookRejected("Digits is too long", status=400)
    return Keypress(delivery_id=delivery_id, call_sid=call_sid, digits=digits)


# -- TwiML -----------------------------------------------------------------------

PRESS_ONE = "Press 1 to acknowledge."
TWICE_UP_TO = 1200  # Twilio takes at most 4000 characters of inline TwiML; an SMS text is up to 1600


def message_reply(text: str | None) -> str:
    """The answer to an inbound SMS: one short message, or none at all."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def voice_alert(text: str, keypress_url: str) -> str:
    """Read the alert (twice when it is short) and collect one digit for ``keypress_url``."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=keypress_url, method="POST", timeout=8)
    gather.say(text)
    gather.say(PRESS_ONE)
    if len(text) <= TWICE_UP_TO:
        gather.pause(length=1)
        gather.say(text)
        gather.say(PRESS_ONE)
    response.append(gather)
    response.say("No acknowledgement received. Goodbye.")
    return str(response)


def voice_answer(acknowledged: bool, keypress_url: str | None = None) -> str:
    """The answer to a keypress: thanks, or one more chance to press 1."""
    response = VoiceResponse()
    if acknowledged:
        response.say("Thank you. Your acknowledgement is recorded. Goodbye.")
        response.hangup()
        return str(response)
    if keypress_url:
        gather = Gather(num_digits=1, action=keypress_url, method="POST", timeout=8)
        gather.say(f"That was not 1. {PRESS_ONE}")
        response.append(gather)
    response.say("No acknowledgement recorded. Goodbye.")
    return str(response)
