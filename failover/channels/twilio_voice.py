"""Voice alerts through the official twilio SDK: a call that reads the message and takes a keypress.

The call's TwiML is sent inline (``Twiml``), so no webhook has to answer before
the callee hears anything; pressing 1 posts to ``/webhooks/twilio/voice`` and
acknowledges. Call progress comes back to the same status callback as SMS
receipts (``CallSid`` / ``CallStatus``). Calls need a voice-capable number in
``TWILIO_FROM``: a Messaging Service cannot place calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.rest import Client

from failover.channels import twilio_webhooks
from failover.channels.base import OutgoingMessage, Receipt
from failover.channels.twilio_client import RecordingHttpClient, TwilioClients, status_callback_url, twilio_errors
from failover.errors import PermanentDeliveryError

CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
RING_SECONDS = 30  # hang up before most voicemail boxes answer


class TwilioVoice:
    name = "voice"
    transport = "twilio"
    max_batch = 1

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        caller_id: str | None,
        api_base: str,
        public_url: str,
        timeout: float = 15.0,
    ) -> None:
        self.caller_id = caller_id
        self.public_url = public_url
        self.clients = TwilioClients(account_sid=account_sid, auth_token=auth_token, api_base=api_base, timeout=timeout)

    def status_callback(self, delivery_id: int) -> str:
        return status_callback_url(self.public_url, delivery_id)

    def keypress_url(self, delivery_id: int) -> str:
        return f"{self.public_url}/webhooks/twilio/voice?delivery={delivery_id}"

    def client(self) -> tuple[Client, RecordingHttpClient]:
        return self.clients.get()

    def close(self) -> None:
        self.clients.close()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        return [self._call(message) for message in messages]

    def _call(self, message: OutgoingMessage) -> Receipt:
        if not self.caller_id:
            raise PermanentDeliveryError("voice calls need TWILIO_FROM (a voice-capable number)", code="no-caller-id")
        client, _ = self.client()
        with twilio_errors(may_have_sent=True):
            call = client.calls.create(
                to=message.to,
                from_=self.caller_id,
                twiml=twilio_webhooks.voice_alert(message.body, self.keypress_url(message.delivery_id)),
                status_callback=self.status_callback(message.delivery_id),
                status_callback_event=CALL_EVENTS,
                status_callback_method="POST",
                timeout=RING_SECONDS,
            )
        return Receipt(message.delivery_id, str(call.sid))
