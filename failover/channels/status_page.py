"""The fallback status page as a channel: a step becomes a notice anyone can read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select

from failover.channels.base import OutgoingMessage, Receipt
from failover.clock import utcnow
from failover.db import Database
from failover.models import Notice


class StatusPageChannel:
    name = "status"
    transport = "status"
    max_batch = 50

    def __init__(self, database: Database) -> None:
        self.database = database

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        receipts = []
        with self.database.transaction() as session:
            for message in messages:
                notice = session.scalar(select(Notice).where(Notice.delivery_id == message.delivery_id))
                if notice is None:  # idempotent: a retried batch finds its notice
                    now = utcnow()
                    notice = Notice(
                        title=message.subject or "Notice",
                        body=message.body,
                        severity=message.severity or "major",
                        incident_id=message.incident_id,
                        delivery_id=message.delivery_id,
                        created_by="runbook",
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(notice)
                    session.flush()
                receipts.append(Receipt(message.delivery_id, f"notice-{notice.id}"))
        return receipts

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        with self.database.reading() as session:
            found = session.scalar(select(Notice.id).where(Notice.delivery_id == message.delivery_id))
        return Receipt(message.delivery_id, f"notice-{found}") if found is not None else None
