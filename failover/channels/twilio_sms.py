"""SMS through the official twilio SDK: ``send_async`` on the send loop (one aiohttp pool), ``send`` and
``find`` for synchronous callers (per-thread clients: see twilio_client). Every message
carries a ``StatusCallback`` that names its ledger row, which is how delivery
receipts - and reconciliation after a crash - find it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from twilio.rest import Client

from failover.channels.base import OutgoingMessage, Receipt
from failover.channels.twilio_client import (
    AsyncTwilio,
    RecordingHttpClient,
    TwilioClients,
    status_callback_url,
    twilio_errors,
)


class TwilioSMS:
    name = "sms"
    transport = "twilio"
    max_batch = 1  # Twilio takes one message per request

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str | None,
        messaging_service_sid: str | None,
        api_base: str,
        public_url: str,
        timeout: float = 15.0,
    ) -> None:
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.public_url = public_url
        self.clients = TwilioClients(account_sid=account_sid, auth_token=auth_token, api_base=api_base, timeout=timeout)
        self.async_client = AsyncTwilio(
            account_sid=account_sid, auth_token=auth_token, api_base=api_base, timeout=timeout
        )

    def status_callback(self, delivery_id: int) -> str:
        return status_callback_url(self.public_url, delivery_id)

    def client(self) -> tuple[Client, RecordingHttpClient]:
        return self.clients.get()

    def warm(self) -> None:
        self.clients.warm()

    def close(self) -> None:
        self.clients.close()

    async def aclose(self) -> None:
        await self.async_client.aclose()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        return [self._send_one(message) for message in messages]

    async def send_async(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        client = self.async_client.get()
        receipts = []
        for message in messages:
            with twilio_errors(may_have_sent=True):
                created = await client.messages.create_async(**self._fields(message))
            receipts.append(Receipt(message.delivery_id, str(created.sid)))
        return receipts

    def _fields(self, message: OutgoingMessage) -> dict[str, str]:
        sender = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.sender or ""}
        )
        return {
            "to": message.to,
            "body": message.body,
            "status_callback": self.status_callback(message.delivery_id),
            **sender,
        }

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        """Reconciliation: did Twilio accept this message although we never heard back?

        Twilio has no idempotency key and its Message resource does not echo the
        StatusCallback, so we look for a message to the same number with the
        same body created since the attempt started (the newest 50 suffice).
        The dispatcher also refuses a sid that another ledger row already owns.
        """
        client, _ = self.client()
        with twilio_errors(may_have_sent=False):
            for record in client.messages.list(to=message.to, limit=50, page_size=50):
                created = record.date_created
                if record.body == message.body and (created is None or created >= since):
                    return Receipt(message.delivery_id, str(record.sid))
        return None

    def _send_one(self, message: OutgoingMessage) -> Receipt:
        client, _ = self.client()
        with twilio_errors(may_have_sent=True):
            created = client.messages.create(**self._fields(message))
        return Receipt(message.delivery_id, str(created.sid))
