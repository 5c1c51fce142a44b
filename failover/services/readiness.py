"""Readiness: ``failover doctor`` and the Readiness page (engine/doctor.py), and canaries (engine/canary.py)."""

from __future__ import annotations

import datetime as dt

from failover.clock import utcnow
from failover.db import Database
from failover.domain.readiness import Report
from failover.engine import canary, doctor
from failover.models import CanaryRun
from failover.services.config import Configuration
from failover.services.delivery import Delivery
from failover.settings import Settings


class Readiness:
    def __init__(self, settings: Settings, database: Database, config: Configuration, delivery: Delivery) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.delivery = delivery

    def report(self, *, only: tuple[str, ...] = ()) -> Report:
        """Every readiness check (or those whose id starts with one of ``only``)."""
        return doctor.run(self.settings, self.database, self.config.catalog_or_none(), now=utcnow(), only=only)

    def canary_start(self) -> canary.Round:
        timeout = dt.timedelta(seconds=self.settings.canary_timeout)
        targets = self.settings.canary_targets
        return canary.start(self.database, self.delivery.channels, targets, now=utcnow(), timeout=timeout)

    def canary_check(self) -> canary.Round:
        return canary.check(self.database, self.delivery.channels, self.settings.canary_targets, now=utcnow())

    def canary_history(self, limit: int = 30) -> list[CanaryRun]:
        with self.database.reading() as session:
            return canary.history(session, limit=limit)
