"""The audit log's edges: refused callbacks, signed checkpoints anchored outside the database, the key check."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from failover import anchors
from failover.channels.base import Channel
from failover.channels.sendgrid_email import SendGridEmail
from failover.clock import utcnow
from failover.db import Database
from failover.engine import audit, refusals
from failover.models import AuditHead
from failover.settings import Settings

log = logging.getLogger(__name__)


class Audit:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        key: audit.AuditKey,
        channels: Callable[[], Mapping[str, Channel]],
    ) -> None:
        self.settings = settings
        self.database = database
        self.key = key
        self._channels = channels  # the email checkpoint sink mails through the backup mail channel

    def webhook_rejected(
        self,
        *,
        endpoint: str,
        reason: str,
        status: int,
        remote: str | None,
        actor: str = "webhook",
        size: int | None = None,
    ) -> None:
        """Count a refused callback; the first of each window is audited (which endpoint, why, from where)."""
        refusal = refusals.Refusal(endpoint, status, reason, remote, actor=actor, size=size)
        with self.database.transaction() as session:
            refusals.refused(session, refusal, now=utcnow())

    @cached_property
    def checkpoint_sinks(self) -> list[anchors.Sink]:
        sinks: list[anchors.Sink] = [anchors.LogSink()]
        sinks += [anchors.DirectorySink(directory) for directory in self.settings.checkpoint_dirs]
        email = self._channels().get("email")
        if self.settings.audit_checkpoint_email and isinstance(email, SendGridEmail):
            sinks.append(anchors.EmailSink(self.settings.audit_checkpoint_email, email.notify))
        return sinks

    def checkpoint(self) -> dict[str, Any]:
        """Beat's checkpoint: close refusal windows, verify from the last checkpoint, anchor the result outside."""
        with self.database.transaction() as session:
            refusals.flush(session, now=utcnow())
        with self.database.reading() as session:
            verdict = audit.verify(session, incremental=True)
        if not verdict.ok:
            log.error("no audit checkpoint written: %s", verdict)
            return {"written": False, "verdict": str(verdict)}
        with self.database.transaction() as session:
            previous = audit.latest_checkpoint(session)
            checkpoint = audit.save_checkpoint(session, verdict, now=utcnow())
        if checkpoint is None:
            return {"written": False, "verdict": str(verdict)}
        first_of_day = previous is None or previous.at.date() != checkpoint.at.date()
        stored = []
        for sink in self.checkpoint_sinks:
            if getattr(sink, "daily", False) and not first_of_day:
                continue
            try:
                sink.write(checkpoint)
                stored.append(sink.name)
            except anchors.AnchorError as exc:
                log.error("audit checkpoint %s not stored in %s: %s", checkpoint.seq, sink.name, exc)
        return {"written": True, "seq": checkpoint.seq, "sinks": stored}

    def check_key(self) -> None:
        """Refuse to start with a key other than the one the chain is signed with (ConfigError)."""
        try:
            with self.database.reading() as session:
                head = session.get(AuditHead, 1)
        except SQLAlchemyError as exc:  # not migrated yet, or the database is restarting: appends will tell
            log.warning("cannot check the audit key against the database now: %s", type(exc).__name__)
            return
        if head is not None and head.key_id is not None:
            audit.check_key(head, self.key)
