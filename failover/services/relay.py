"""Publishing committed batches: the one place the broker is told about new work."""

from __future__ import annotations

from collections.abc import Sequence

from failover.db import Database
from failover.engine import relay
from failover.errors import BrokerUnavailable


def _no_broker(batch_id: int, countdown: float) -> None:
    raise BrokerUnavailable("no broker is configured in this process")


class Relay:
    """Hands batch ids to the broker; ``publisher`` is set by ``create_celery`` (none: batches wait for the sweep)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.publisher: relay.Publish = _no_broker

    def publish(self, batch_ids: Sequence[int]) -> bool:
        """Publish each batch; False if the broker refused any (the sweep republishes them)."""
        return relay.relay(self.database, self.publisher, batch_ids) if batch_ids else True
