"""The bridge line on Twilio: conference TwiML, calls that dial people in, and conference callbacks.

Someone calling our number reaches ``/webhooks/twilio/bridge`` (the number's
voice URL in the Twilio console): a ``<Gather>`` asks for the PIN, and the
right PIN answers ``<Dial><Conference>`` with a signed status callback to
``/webhooks/twilio/conference``. Dialling a group in places one call each
(the Calls API, TwiML inline) straight into the same conference. Twilio's
conference callbacks carry ``ConferenceSid``, ``FriendlyName``,
``StatusCallbackEvent`` (conference-start, conference-end,
participant-join, participant-leave, ...), ``CallSid``, ``SequenceNumber``
and ``Timestamp`` - no caller number, so who joined is known from the
calls we placed and from the PIN step of calls we answered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from failover.channels.twilio_client import TwilioClients
from failover.errors import WebhookRejected

BRIDGE_PATH = "/webhooks/twilio/bridge"
PIN_PATH = "/webhooks/twilio/bridge/pin"
CONFERENCE_PATH = "/webhooks/twilio/conference"
EVENTS = "start end join leave"
_SID = re.compile(r"^CA[0-9a-f]{32}$")
_CONFERENCE_SID = re.compile(r"^CF[0-9a-f]{32}$")
_NAME = re.compile(r"^failover-incident-(\d{1,12})$")
JOIN_EVENTS = {"participant-join": "join", "participant-leave": "leave"}


@dataclass(frozen=True)
class ConferenceEvent:
    conference_sid: str
    incident_id: int
    event: str  # conference-start | conference-end | participant-join | participant-leave | ...
    call_sid: str | None
    sequence: int


@dataclass(frozen=True)
class IncomingCall:
    call_sid: str
    caller: str
    digits: str | None = None


def conference_twiml(name: str, callback_url: str, *, greeting: str | None = None) -> str:
    response = VoiceResponse()
    if greeting:
        response.say(greeting)
    dial = Dial()
    dial.conference(
        name,
        status_callback=callback_url,
        status_callback_event=EVENTS,
        status_callback_method="POST",
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=True,
    )
    response.append(dial)
    return str(response)


def fixed_twiml(number: str, pin: str) -> str:
    """Dial someone into another provider's bridge: call its number, then key in the PIN."""
    response = VoiceResponse()
    dial = Dial()
    dial.number(number, send_digits=f"ww{pin}#")
    response.append(dial)
    return str(response)


def pin_prompt(action_url: str, *, again: bool = False) -> str:
    response = VoiceResponse()
    gather = Gather(num_digits=12, finish_on_key="#", action=action_url, method="POST", timeout=10)
    gather.say(("That PIN is not valid. " if again else "") + "Enter the bridge PIN, then press the pound key.")
    response.append(gather)
    response.say("No PIN received. Goodbye.")
    return str(response)


def goodbye(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def parse_incoming(form: Mapping[str, str]) -> IncomingCall:
    sid = form.get("CallSid", "")
    if not _SID.match(sid):
        raise WebhookRejected("CallSid is missing or malformed", status=400)
    caller = (form.get("From") or form.get("Caller") or "").strip()[:64]
    digits = form.get("Digits")
    if digits is not None and (len(digits) > 32 or not digits.replace("#", "").isdigit()):
        digits = ""
    return IncomingCall(sid, caller, digits.replace("#", "") if digits is not None else None)


def parse_event(form: Mapping[str, str]) -> ConferenceEvent:
    sid = form.get("ConferenceSid", "")
    if not _CONFERENCE_SID.match(sid):
        raise WebhookRejected("ConferenceSid is missing or malformed", status=400)
    name = _NAME.match(form.get("FriendlyName", ""))
    if name is None:
        raise WebhookRejected("FriendlyName is not one of our bridges", status=400)
    event = form.get("StatusCallbackEvent", "")
    if not event or len(event) > 40:
        raise WebhookRejected("StatusCallbackEvent is missing", status=400)
    call = form.get("CallSid") or None
    if call is not None and not _SID.match(call):
        raise WebhookRejected("CallSid is malformed", status=400)
    sequence = form.get("SequenceNumber", "0")
    return ConferenceEvent(sid, int(name.group(1)), event, call, int(sequence) if sequence.isdigit() else 0)


class ConferenceDialer:
    """Places the calls that bring people into a bridge (the Calls API, TwiML inline)."""

    def __init__(self, *, account_sid: str, auth_token: str, caller_id: str, api_base: str, timeout: float = 15.0):
        self.caller_id = caller_id
        self.clients = TwilioClients(account_sid=account_sid, auth_token=auth_token, api_base=api_base, timeout=timeout)

    def call(self, to: str, twiml: str) -> str | None:
        """The new call's sid, or None when Twilio refused or could not be reached (the caller audits it)."""
        client, _ = self.clients.get()
        try:
            call = client.calls.create(to=to, from_=self.caller_id, twiml=twiml, timeout=30)
        except (TwilioRestException, requests.RequestException):
            return None
        return str(call.sid)

    def close(self) -> None:
        self.clients.close()
