"""What the dashboard shows at a glance: open incidents, pending approvals, activations in progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.engine import queries
from failover.models import Activation, ActivationState

LIMIT = 50


def overview(session: Session) -> dict[str, Any]:
    pending = list(
        session.scalars(
            select(Activation)
            .where(Activation.state == ActivationState.PENDING_APPROVAL)
            .order_by(Activation.id)
            .limit(LIMIT)
        )
    )
    running = list(
        session.scalars(
            select(Activation).where(Activation.state == ActivationState.QUEUED).order_by(Activation.id).limit(LIMIT)
        )
    )
    counts = queries.status_counts(session, [a.id for a in pending + running])
    return {
        "incidents": queries.incidents(session, open_only=True),
        "pending_approvals": [queries.activation_summary(a, counts[a.id]) for a in pending],
        "in_progress": [queries.activation_summary(a, counts[a.id]) for a in running],
        "activations": queries.recent_activations(session, limit=10),
    }
