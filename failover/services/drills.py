"""Scheduled drills: config/drills.yaml in, one drill activation per due slot out (beat, every minute).

The schedule file is read when it changes; a broken file is logged (with file
and line) and runs nothing until it is fixed. See failover/domain/drills.py for
the rules and failover/engine/drills.py for the once-only bookkeeping.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from failover.clock import utcnow
from failover.db import Database
from failover.domain import drills
from failover.engine import drills as drill_runs
from failover.engine import optouts
from failover.engine.queries import iso
from failover.errors import FailoverError, Problem
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings

log = logging.getLogger(__name__)
FILE = "drills.yaml"
CHECK_EVERY_S = 60.0


class Drills:
    def __init__(self, settings: Settings, database: Database, config: Configuration, relay: Relay) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int] | None, list[drills.Schedule], list[Problem]] | None = None

    @property
    def path(self) -> Path:
        return self.settings.config_dir / FILE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def schedules(self) -> tuple[list[drills.Schedule], list[Problem]]:
        try:
            stat = self.path.stat()
            signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if self._cached is None or self._cached[0] != signature:
                loaded, problems = drills.load(self.path)
                for problem in problems:
                    log.error("drill schedule problem (no scheduled drill runs until fixed): %s", problem)
                self._cached = (signature, loaded, problems)
            return self._cached[1], self._cached[2]

    def overview(self) -> list[dict[str, Any]]:
        """The schedules as the drills page lists them, with the next time each will run."""
        zone, now = self.zone, utcnow()
        loaded, _ = self.schedules()
        out = []
        for schedule in loaded:
            upcoming = schedule.cron.next_after(now.astimezone(zone))
            out.append(
                {
                    "name": schedule.name,
                    "runbook": schedule.runbook,
                    "cron": schedule.cron.text,
                    "window": _duration(schedule.window.total_seconds()),
                    "next": upcoming.strftime("%Y-%m-%d %H:%M %Z") if upcoming else None,
                    "zone": zone.key,
                }
            )
        return out

    def run_due(self) -> dict[str, Any]:
        """Start every drill whose slot is due now (each slot once); beat calls this every minute."""
        loaded, problems = self.schedules()
        started: list[dict[str, Any]] = []
        failed: list[str] = []
        if not loaded:
            return {"started": started, "failed": failed, "problems": len(problems)}
        now, zone = utcnow(), self.zone
        database = self.database
        for schedule in loaded:
            slot = schedule.due(now, zone)
            if slot is None:
                continue
            with database.reading() as session:
                if drill_runs.taken(session, schedule, slot):
                    continue
            try:
                catalog = self.config.catalog()
                with database.reading() as session:
                    opted_out = optouts.opted_out_people(session, catalog.contacts)
                with database.transaction() as session:
                    accepted = drill_runs.start(session, catalog, schedule, slot, opted_out=opted_out)
            except FailoverError as exc:
                log.error("scheduled drill %s (%s) could not start: %s", schedule.name, iso(slot), exc)
                with database.transaction() as session:
                    drill_runs.failed(session, schedule, slot, str(exc))
                failed.append(schedule.name)
                continue
            if accepted is None:
                continue
            log.info("scheduled drill %s started: activation %s", schedule.name, accepted.activation_id)
            self.relay.publish(accepted.batch_ids)
            started.append({"schedule": schedule.name, "activation": accepted.activation_id})
        return {"started": started, "failed": failed, "problems": len(problems)}


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
