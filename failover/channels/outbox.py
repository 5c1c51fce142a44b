"""The embedded default: messages are kept in the database and shown in the console.

Like a development mail catcher, nothing leaves the machine. Writing is
idempotent on the delivery id, so a retried batch never stores a message twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from failover.channels.base import OutgoingMessage, Receipt
from failover.db import Database
from failover.models import OutboxMessage


class OutboxChannel:
    transport = "outbox"
    max_batch = 500

    def __init__(self, name: str, database: Database) -> None:
        self.name = name
        self.database = database

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        rows = [
            {"delivery_id": m.delivery_id, "channel": self.name, "to": m.to, "subject": m.subject, "body": m.body}
            for m in messages
        ]
        with self.database.transaction() as session:
            insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert  # type: ignore[union-attr]
            session.execute(insert(OutboxMessage).values(rows).on_conflict_do_nothing(index_elements=["delivery_id"]))
            ids = dict(
                session.execute(
                    select(OutboxMessage.delivery_id, OutboxMessage.id).where(
                        OutboxMessage.delivery_id.in_([m.delivery_id for m in messages])
                    )
                ).all()
            )
        return [Receipt(m.delivery_id, f"outbox-{ids[m.delivery_id]}") for m in messages]

    def find(self, message: OutgoingMessage, since: dt.datetime) -> Receipt | None:
        """Reconciliation: the outbox row is keyed by delivery id, so this is exact."""
        with self.database.reading() as session:
            found = session.scalar(select(OutboxMessage.id).where(OutboxMessage.delivery_id == message.delivery_id))
        return Receipt(message.delivery_id, f"outbox-{found}") if found is not None else None
