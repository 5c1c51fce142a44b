"""The public status page's vocabulary and arithmetic, in the Atlassian Statuspage words people know.

Components have one of five states; a public incident has an impact and moves
through investigating -> identified -> monitoring -> resolved; a maintenance
window moves through scheduled -> in_progress -> verifying -> completed. A
component's state is never stored: it is the worst state the open incidents
and running maintenance windows give it, so history (the 90-day bars) and
the present come from the same rows. ``config/status.yaml`` (optional) names
the page, declares components and groups, and lists publish targets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from failover.domain import yamlfile
from failover.errors import ConfigProblems, Problem

# -- states ------------------------------------------------------------------------------------------------

OPERATIONAL = "operational"
DEGRADED = "degraded_performance"
PARTIAL = "partial_outage"
MAJOR = "major_outage"
MAINTENANCE = "under_maintenance"
COMPONENT_STATES = (OPERATIONAL, DEGRADED, PARTIAL, MAJOR, MAINTENANCE)
COMPONENT_LABELS = {
    OPERATIONAL: "Operational",
    DEGRADED: "Degraded performance",
    PARTIAL: "Partial outage",
    MAJOR: "Major outage",
    MAINTENANCE: "Under maintenance",
}
# How bad a state is, for "the worst of": maintenance is announced, so it ranks below any outage.
_RANK = {OPERATIONAL: 0, MAINTENANCE: 1, DEGRADED: 2, PARTIAL: 3, MAJOR: 4}

IMPACTS = ("none", "minor", "major", "critical")
# The notices' historical severities, as Statuspage impacts.
SEVERITY_IMPACT = {"info": "none", "minor": "minor", "major": "major", "critical": "critical"}
IMPACT_SEVERITY = {impact: severity for severity, impact in SEVERITY_IMPACT.items()}
# An incident that names no state for a component it affects gives it this one.
IMPACT_STATE = {"none": OPERATIONAL, "minor": DEGRADED, "major": PARTIAL, "critical": MAJOR}

INCIDENT_PROGRESS = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_PROGRESS = ("scheduled", "in_progress", "verifying", "completed")
CLOSED_PROGRESS = frozenset({"resolved", "completed", "postmortem"})
PROGRESS_LABELS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "verifying": "Verifying",
    "completed": "Completed",
}

# The page indicator (Statuspage's status.indicator) and its sentence.
INDICATOR_TEXT = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
    "maintenance": "Service Under Maintenance",
}
_STATE_INDICATOR = {OPERATIONAL: "none", DEGRADED: "minor", PARTIAL: "major", MAJOR: "critical"}
_INDICATOR_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}

MAX_TITLE, MAX_BODY = 300, 10_000
UPTIME_DAYS = 90
# Share of a day an outage state costs in the uptime figure (Statuspage counts a partial outage at 30 %).
_DOWNTIME_WEIGHT = {MAJOR: 1.0, PARTIAL: 0.3}


def worst(states: Iterable[str]) -> str:
    return max(states, key=lambda s: _RANK.get(s, 0), default=OPERATIONAL)


def progress_states(kind: str) -> tuple[str, ...]:
    return MAINTENANCE_PROGRESS if kind == "maintenance" else INCIDENT_PROGRESS


def valid_progress(kind: str, progress: str) -> str:
    allowed = progress_states(kind)
    if progress not in allowed:
        raise ValueError(f"status must be one of {', '.join(allowed)}")
    return progress


def valid_text(title: str | None, body: str | None, *, need_title: bool = True) -> tuple[str, str]:
    """An update's title and text, stripped; ValueError naming what is wrong (the web turns it into a 400)."""
    title, body = (title or "").strip(), (body or "").strip()
    if need_title and not title:
        raise ValueError("an incident needs a title")
    if len(title) > MAX_TITLE:
        raise ValueError(f"the title is longer than {MAX_TITLE} characters")
    if not body:
        raise ValueError("an update needs a text")
    if len(body) > MAX_BODY:
        raise ValueError(f"the text is longer than {MAX_BODY} characters")
    return title, body


def valid_components(chosen: dict[str, str], known: Sequence[str]) -> dict[str, str]:
    """Affected components (name -> state), each a known component with one of the five states."""
    names = {name.casefold(): name for name in known}
    result: dict[str, str] = {}
    for name, state in chosen.items():
        canonical = names.get(name.strip().casefold())
        if canonical is None:
            raise ValueError(f"unknown component {name[:80]!r}")
        if state not in COMPONENT_STATES:
            raise ValueError(f"component state must be one of {', '.join(COMPONENT_STATES)}")
        result[canonical] = state
    return result


# -- what the page shows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One incident or maintenance window as history sees it: which components, how bad, from when to when."""

    components: dict[str, str]  # name -> state while it was open
    start: dt.datetime
    end: dt.datetime | None  # None: still open


@dataclass(frozen=True)
class Day:
    date: dt.date
    state: str  # the worst state of the day
    downtime: float  # 0..1 of the day


@dataclass(frozen=True)
class Uptime:
    days: list[Day]
    percent: float


def component_states(names: Sequence[str], open_spans: Iterable[Span]) -> dict[str, str]:
    """Every component's state now: the worst any open incident or running maintenance gives it."""
    states = {name: OPERATIONAL for name in names}
    for span in open_spans:
        for name, state in span.components.items():
            if name in states:
                states[name] = worst((states[name], state))
    return states


def indicator(states: Iterable[str], impacts: Iterable[str] = ()) -> str:
    """The page indicator: none | minor | major | critical | maintenance, from component states and impacts."""
    found = [_STATE_INDICATOR.get(s, "maintenance") for s in states]
    found += [i for i in impacts if i in _INDICATOR_RANK]
    return max(found, key=lambda i: _INDICATOR_RANK[i], default="none")


def uptime(name: str, spans: Iterable[Span], *, now: dt.datetime, days: int = UPTIME_DAYS) -> Uptime:
    """The per-day bar of one component over ``days`` days up to today (UTC), and the uptime percentage."""
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    worst_of: dict[dt.date, str] = {}
    down: dict[dt.date, float] = {}
    for span in spans:
        state = span.components.get(name)
        if state is None or state == OPERATIONAL:
            continue
        start, end = span.start, span.end or now
        day = max(start.astimezone(dt.UTC).date(), first)
        while day <= min(end.astimezone(dt.UTC).date(), today):
            day_start = dt.datetime.combine(day, dt.time(), dt.UTC)
            day_end = min(day_start + dt.timedelta(days=1), now)
            overlap = (min(end, day_end) - max(start, day_start)).total_seconds()
            length = max((day_end - day_start).total_seconds(), 1.0)
            if overlap > 0 or start == end:
                worst_of[day] = worst((worst_of.get(day, OPERATIONAL), state))
                cost = _DOWNTIME_WEIGHT.get(state, 0.0) * max(overlap, 0.0) / length
                down[day] = min(1.0, down.get(day, 0.0) + cost)
            day += dt.timedelta(days=1)
    bars = [
        Day(d, worst_of.get(d, OPERATIONAL), down.get(d, 0.0))
        for d in (first + dt.timedelta(days=i) for i in range(days))
    ]
    percent = 100.0 * (1.0 - sum(b.downtime for b in bars) / len(bars))
    return Uptime(bars, round(percent, 2))


def slug(name: str) -> str:
    """A component's name as a path and id part: lower case, letters and digits, dashes between."""
    out, dash = [], False
    for char in name.casefold():
        if char.isascii() and char.isalnum():
            out.append(char)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-") or "component"


# -- config/status.yaml --------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Strict):
    name: str = Field(default="Service status", min_length=1, max_length=120)
    logo_url: str | None = Field(default=None, max_length=500)
    accent: str = Field(default="#0b5cad", pattern=r"^#[0-9a-fA-F]{6}$")
    help_phone: str | None = Field(default=None, max_length=40)
    footer_links: list[dict[str, str]] = Field(default_factory=list, max_length=10)
    timezone: str = Field(default="UTC", max_length=64)

    @field_validator("logo_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "/")):
            raise ValueError("logo_url must be an https:// address or a path")
        return value

    @field_validator("footer_links")
    @classmethod
    def _links(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for link in value:
            if set(link) != {"title", "url"} or not link["url"].startswith(("https://", "http://", "mailto:", "tel:")):
                raise ValueError("each footer link is {title: ..., url: https://...}")
        return value


class ComponentEntry(_Strict):
    name: str = Field(min_length=1, max_length=120)
    group: str | None = Field(default=None, max_length=120)
    description: str | None = Field(default=None, max_length=500)


class S3Target(_Strict):
    kind: Literal["s3"]
    name: str | None = Field(default=None, max_length=64)
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=200)
    region: str | None = None
    endpoint_url: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"s3:{self.bucket}/{self.prefix}".rstrip("/")


class DirectoryTarget(_Strict):
    kind: Literal["directory"]
    name: str | None = Field(default=None, max_length=64)
    path: str = Field(min_length=1)

    @property
    def label(self) -> str:
        return self.name or f"directory:{self.path}"


Target = Annotated[S3Target | DirectoryTarget, Field(discriminator="kind")]


class StatusConfig(_Strict):
    page: Brand = Field(default_factory=lambda: Brand())
    components: list[ComponentEntry] | None = None  # None: detection.yaml's watch list
    publish: list[Target] = Field(default_factory=list)


@dataclass(frozen=True)
class Component:
    name: str
    group: str | None = None
    description: str | None = None

    @property
    def id(self) -> str:
        return slug(self.name)


@dataclass(frozen=True)
class Page:
    """What the status page is made of: its brand, its components (in order) and its targets."""

    brand: Brand
    components: tuple[Component, ...]
    targets: tuple[S3Target | DirectoryTarget, ...] = ()
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]


def status_file(config_dir: Path) -> Path:
    return config_dir / "status.yaml"


def parse(text: str, shown: str) -> tuple[StatusConfig | None, list[Problem]]:
    doc = yamlfile.load(text, shown)
    problems = list(doc.problems)
    if doc.data is None:
        return (StatusConfig(), problems) if not problems else (None, problems)
    if not isinstance(doc.data, dict):
        return None, [*problems, Problem(shown, 1, "status.yaml must be a mapping with page:, components:, publish:")]
    try:
        config = StatusConfig.model_validate(doc.data)
    except ValidationError as exc:
        return None, [*problems, *yamlfile.pydantic_problems(exc.errors(), doc.lines, shown)]
    names = [c.name.casefold() for c in config.components or []]
    slugs = [slug(c.name) for c in config.components or []]
    labels = [t.label for t in config.publish]
    for index, name in enumerate(names):
        if names.index(name) != index or slugs.index(slugs[index]) != index:
            problems.append(Problem(shown, doc.lines.of(("components", index)), "component named twice"))
    for index, label in enumerate(labels):
        if labels.index(label) != index:
            problems.append(Problem(shown, doc.lines.of(("publish", index)), f"publish target {label} named twice"))
    return (None if problems else config), problems


def check(config_dir: Path) -> list[Problem]:
    """config/status.yaml's problems for ``failover runbooks check`` (none when the file is absent)."""
    path = status_file(config_dir)
    if not path.is_file():
        return []
    shown = yamlfile.display_path(path)
    try:
        return parse(path.read_text(encoding="utf-8"), shown)[1]
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(shown, 0, f"cannot read: {exc}")]


def page_from(config: StatusConfig, watch: Sequence[str]) -> Page:
    """The page: declared components, else one per watched service (detection.yaml), in that order."""
    entries: list[Any] = list(config.components) if config.components is not None else []
    components = tuple(Component(e.name, e.group, e.description) for e in entries) or tuple(
        Component(name) for name in dict.fromkeys(watch)
    )
    return Page(config.page, components, tuple(config.publish))


def load(config_dir: Path, watch: Sequence[str]) -> Page:
    """config/status.yaml (optional) with the watch list; ConfigProblems (file:line) when it is broken."""
    path = status_file(config_dir)
    if not path.is_file():
        return page_from(StatusConfig(), watch)
    shown = yamlfile.display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigProblems([Problem(shown, 0, f"cannot read: {exc}")]) from None
    config, problems = parse(text, shown)
    if config is None or problems:
        raise ConfigProblems(problems)
    return page_from(config, watch)


# -- the page as the renderers see it (engine.statuspage builds it from the database) ---------------------------


@dataclass(frozen=True)
class UpdateView:
    id: int
    progress: str
    body: str
    created_at: dt.datetime
    components: dict[str, str]


@dataclass(frozen=True)
class IncidentView:
    id: int
    kind: str  # incident | maintenance
    name: str
    impact: str
    progress: str
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    scheduled_for: dt.datetime | None
    scheduled_until: dt.datetime | None
    components: dict[str, str]
    updates: list[UpdateView]  # newest first

    @property
    def open(self) -> bool:
        return self.progress not in CLOSED_PROGRESS

    @property
    def key(self) -> str:
        return f"{'maintenance' if self.kind == 'maintenance' else 'incident'}-{self.id}"


@dataclass(frozen=True)
class ComponentView:
    name: str
    id: str
    group: str | None
    description: str | None
    state: str
    position: int
    uptime: Uptime


@dataclass(frozen=True)
class PageView:
    brand: Brand
    generated_at: dt.datetime
    updated_at: dt.datetime | None
    indicator: str
    components: list[ComponentView]
    incidents: list[IncidentView]  # open incidents, newest first
    maintenances: list[IncidentView]  # running and upcoming windows, soonest first
    history: list[IncidentView]  # resolved incidents and completed windows, newest first
    heartbeat_s: int
    public_url: str

    @property
    def description(self) -> str:
        return INDICATOR_TEXT[self.indicator]

    @property
    def groups(self) -> list[tuple[str | None, list[ComponentView]]]:
        """Components in order, grouped where a group is named (a group appears where its first member is)."""
        order: dict[str | None, list[ComponentView]] = {}
        singles = 0
        for component in self.components:
            key = component.group if component.group else f"\x00{singles}"
            singles += 0 if component.group else 1
            order.setdefault(key, []).append(component)
        return [(None if (k or "").startswith("\x00") else k, members) for k, members in order.items()]

    def for_component(self, name: str) -> list[IncidentView]:
        every = [*self.incidents, *self.maintenances, *self.history]
        return sorted((i for i in every if name in i.components), key=lambda i: i.updated_at, reverse=True)
