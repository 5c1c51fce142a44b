"""Scheduled drills (config/drills.yaml): cron-like times with a window in which a missed drill may still start.

A schedule fires its runbook as a drill at each time its ``cron`` names
(minute hour day-of-month month day-of-week, in ``FAILOVER_TIMEZONE``). If
beat was not running at that minute, the drill still starts when beat comes
back, as long as that is within ``window`` of the time (default 1 hour); never
later, so a drill meant for Tuesday 10:00 does not wake everyone at 03:00.
Each (schedule, time) runs at most once: the engine records it.

Cron fields take ``*``, numbers, ranges ``a-b``, lists ``a,b`` and steps
``*/n`` / ``a-b/n``; day of week 0-7 (0 and 7 are Sunday). When both day of
month and day of week are restricted, either may match (as in cron).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from failover.domain import yamlfile
from failover.domain.durations import parse_duration
from failover.errors import Problem

MAX_WINDOW = dt.timedelta(days=1)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def matches(self, at: dt.datetime) -> bool:
        if at.minute not in self.minutes or at.hour not in self.hours or at.month not in self.months:
            return False
        return self._day(at.date())

    def _day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday

    def latest(self, now: dt.datetime, window: dt.timedelta) -> dt.datetime | None:
        """The latest matching minute in (now - window, now], or None (``now`` aware; answers in its zone)."""
        at = now.replace(second=0, microsecond=0)
        earliest = now - window
        while at > earliest:
            if self.matches(at):
                return at
            at -= dt.timedelta(minutes=1)
        return None

    def next_after(self, now: dt.datetime, *, days: int = 400) -> dt.datetime | None:
        """The first matching minute after ``now`` (in ``now``'s zone), looking ``days`` ahead."""
        start = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for offset in range(days + 1):
            day = start.date() + dt.timedelta(days=offset)
            if not self._day(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=now.tzinfo)
                    if candidate >= start:
                        return candidate
        return None


def parse_cron(text: str) -> Cron:
    """A five-field cron expression; ValueError naming the bad field."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"'{text}' needs 5 fields (minute hour day-of-month month day-of-week), not {len(parts)}")
    values = [_field(part, name, low, high) for part, (name, low, high) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(day % 7 for day in values[4])
    return Cron(
        text=" ".join(parts),
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                first, last = low, high
            elif "-" in base:
                a, _, b = base.partition("-")
                first, last = int(a), int(b)
            else:
                first = last = int(base)
                if step_text:
                    last = high
        except ValueError:
            raise ValueError(f"{name} '{item}' is not a number, range or step") from None
        if step < 1 or first < low or last > high or first > last:
            raise ValueError(f"{name} '{item}' is outside {low}-{high}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


class ScheduleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    runbook: str = Field(min_length=1, max_length=64)
    cron: str
    window: dt.timedelta = dt.timedelta(hours=1)
    reason: str = Field("Scheduled drill", max_length=500)
    message: str | None = Field(None, max_length=1000)
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> dt.timedelta:
        window = parse_duration(value) if not isinstance(value, dt.timedelta) else value
        if window <= dt.timedelta(0) or window > MAX_WINDOW:
            raise ValueError("must be more than 0 and at most 24h")
        return window


class DrillsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drills: list[ScheduleModel] = Field(default_factory=list)


@dataclass(frozen=True)
class Schedule:
    name: str
    runbook: str
    cron: Cron
    window: dt.timedelta
    reason: str
    message: str | None

    def due(self, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
        """The slot (aware, UTC) this schedule should run for now, or None."""
        slot = self.cron.latest(now.astimezone(zone), self.window)
        return slot.astimezone(dt.UTC) if slot is not None else None


def load(path: Path) -> tuple[list[Schedule], list[Problem]]:
    """The schedules of ``path`` (none if it does not exist), or problems with file and line."""
    if not path.is_file():
        return [], []
    shown = yamlfile.display_path(path)
    doc = yamlfile.load(path.read_text(encoding="utf-8"), shown)
    if doc.problems:
        return [], doc.problems
    try:
        parsed = DrillsFile.model_validate(doc.data or {})
    except ValidationError as exc:
        return [], yamlfile.pydantic_problems(exc.errors(), doc.lines, shown)
    problems = _duplicates(parsed.drills, doc.lines, shown)
    if problems:
        return [], problems
    return [
        Schedule(m.name, m.runbook, parse_cron(m.cron), m.window, m.reason, m.message)
        for m in parsed.drills
        if m.enabled
    ], []


def _duplicates(models: Iterable[ScheduleModel], lines: yamlfile.Lines, shown: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, model in enumerate(models):
        if model.name in seen:
            problems.append(Problem(shown, lines.of(("drills", index, "name")), f"drill '{model.name}' named twice"))
        seen.add(model.name)
    return problems
