"""Escalation due times, written when an activation is accepted (fired by ``engine.escalation``).

A module of its own so that ``engine.activation`` can schedule without
importing the escalation use case, which itself writes ledger rows through
``engine.activation``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from failover.domain.runbooks import Runbook
from failover.models import EscalationTimer


def schedule(session: Session, runbook: Runbook, activation_id: int, accepted_at: dt.datetime) -> None:
    """One due time per escalation entry: ``after`` the activation was accepted (its transaction)."""
    session.add_all(
        EscalationTimer(
            activation_id=activation_id,
            entry=index,
            condition=entry.if_,
            channel=entry.channel,
            due_at=accepted_at + entry.after,
            paged=0,
            limited=0,
        )
        for index, entry in enumerate(runbook.escalation)
    )
