"""The detection policy file (config/detection.yaml): what to watch and when an outage is confirmed.

``check(config_dir)`` reports every problem as ``file:line: message``;
``load(config_dir)`` returns a :class:`DetectionConfig` or raises
``ConfigProblems``. A missing file means "watch nothing": the service still
works for manual activations. Pure: no database, no network.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from failover.domain import lastgood, yamlfile
from failover.domain.durations import Duration
from failover.domain.report_policy import ReportsPolicy
from failover.errors import ConfigProblems, Problem

# Microsoft's serviceHealthStatus values that mean trouble is confirmed (see PROVIDERS.md).
DEFAULT_CONFIRM_STATUSES = ("serviceDegradation", "serviceInterruption", "restoringService", "extendedRecovery")
PROBE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SECOND = dt.timedelta(seconds=1)


def fold(value: str) -> str:
    """Graph enums and service names compare case-insensitively ("Incident" == "incident")."""
    return value.strip().casefold()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphPolicy(_Strict):
    poll_interval: Duration = dt.timedelta(seconds=60)
    timeout: Duration = dt.timedelta(seconds=15)
    # A 429/503 asking for at most this long is waited out inside the poll; longer ones skip polls.
    max_retry_wait: Duration = dt.timedelta(seconds=10)

    @field_validator("poll_interval")
    @classmethod
    def _not_too_fast(cls, value: dt.timedelta) -> dt.timedelta:
        # Graph allows 240 requests a minute per app and tenant; a poll costs two or more.
        if value < SECOND:
            raise ValueError("poll_interval must be at least 1s")
        return value


class Probe(_Strict):
    """An independent check of a Microsoft endpoint; its failures are votes for an outage."""

    kind: Literal["smtp", "http"]
    name: str = ""
    enabled: bool = True
    services: tuple[str, ...] = Field(min_length=1)
    interval: Duration = dt.timedelta(seconds=60)
    timeout: Duration = dt.timedelta(seconds=20)
    # smtp
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    ehlo: str | None = None
    mail_from: str | None = None
    rcpt_to: str | None = None
    # http
    url: str | None = None
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: tuple[int, ...] = (200,)

    @model_validator(mode="after")
    def _consistent(self) -> Probe:
        if self.interval < SECOND:
            raise ValueError("interval must be at least 1s")
        if self.kind == "smtp":
            if not self.host:
                raise ValueError("an smtp probe needs host:")
            if self.url is not None:
                raise ValueError("url: belongs to http probes")
            if self.rcpt_to and not self.mail_from:
                raise ValueError("rcpt_to: needs mail_from: (RCPT TO comes after MAIL FROM)")
        else:
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("an http probe needs url: starting with http:// or https://")
            if self.host is not None:
                raise ValueError("host: belongs to smtp probes")
            if any(not 100 <= code <= 599 for code in self.expect_status):
                raise ValueError("expect_status: HTTP statuses are between 100 and 599")
        if self.name and not PROBE_NAME.match(self.name):
            raise ValueError(f"name '{self.name}' may only hold lower-case letters, digits, '.', '_' and '-'")
        return self

    @property
    def key(self) -> str:
        """The probe's stable name: given, or derived from its target."""
        if self.name:
            return self.name
        return f"smtp:{self.host}:{self.port}" if self.kind == "smtp" else f"http:{self.url}"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}" if self.kind == "smtp" else str(self.url)


class WebhookPolicy(_Strict):
    # A failing signal a monitor stops repeating is forgotten after this long.
    ttl: Duration = dt.timedelta(hours=6)


class ConfirmPolicy(_Strict):
    graph_statuses: tuple[str, ...] = DEFAULT_CONFIRM_STATUSES
    graph_classifications: tuple[str, ...] = ("incident",)
    # During identity outages the health API goes dark: count that as one failing probe.
    graph_unreachable_votes: bool = True
    probe_quorum: Annotated[int, Field(ge=1)] = 2
    hold: Duration = dt.timedelta(minutes=3)
    recover_hold: Duration = dt.timedelta(minutes=10)
    max_incidents_per_hour: Annotated[int, Field(ge=1)] = 3
    # How often beat re-evaluates holds and stale votes between readings.
    evaluate_interval: Duration = dt.timedelta(seconds=15)

    @field_validator("evaluate_interval")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value < SECOND:
            raise ValueError("evaluate_interval must be at least 1s")
        return value

    def confirms(self, *, status: str, classification: str) -> bool:
        return fold(status) in {fold(s) for s in self.graph_statuses} and fold(classification) in {
            fold(c) for c in self.graph_classifications
        }


class DetectionConfig(_Strict):
    """The validated contents of detection.yaml."""

    watch: tuple[str, ...] = ()
    graph: GraphPolicy = GraphPolicy()
    probes: tuple[Probe, ...] = ()
    webhook: WebhookPolicy = WebhookPolicy()
    confirm: ConfirmPolicy = ConfirmPolicy()
    reports: ReportsPolicy | None = None  # staff outage reports (domain.staff_reports); absent: not a source

    @field_validator("watch")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(name.strip() for name in value)
        if any(not name for name in cleaned):
            raise ValueError("a watched service needs a name")
        return cleaned

    def service(self, name: str) -> str | None:
        """The watched service called ``name`` (any case), as spelled in the file."""
        wanted = fold(name)
        return next((s for s in self.watch if fold(s) == wanted), None)

    def probe(self, key: str) -> Probe | None:
        return next((p for p in self.probes if p.key == key and p.enabled), None)

    @property
    def active_probes(self) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.enabled)


def detection_file(config_dir: Path) -> Path:
    return config_dir / "detection.yaml"


KEY = "config/detection.yaml"


def check(config_dir: Path) -> tuple[DetectionConfig | None, list[Problem]]:
    path = detection_file(config_dir)
    shown = yamlfile.display_path(path)
    if not path.is_file():
        return DetectionConfig(), []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, 0, f"cannot read: {exc}")]
    return parse(text, shown)


def parse(text: str, shown: str) -> tuple[DetectionConfig | None, list[Problem]]:
    """detection.yaml's text, validated: the config, or None and every problem."""
    doc = yamlfile.load(text, shown)
    problems = list(doc.problems)
    if doc.data is None:
        return (DetectionConfig(), problems) if not problems else (None, problems)
    if not isinstance(doc.data, dict):
        return None, [*problems, Problem(shown, 1, "detection.yaml must be a mapping with watch:, probes:, confirm:")]
    try:
        config = DetectionConfig.model_validate(doc.data)
    except ValidationError as exc:
        return None, [*problems, *yamlfile.pydantic_problems(exc.errors(), doc.lines, shown)]
    problems.extend(_cross_check(config, doc.lines, shown))
    problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.message))
    return (None if problems else config), problems


@dataclass(frozen=True)
class Loaded:
    config: DetectionConfig | None  # None: broken and no last good version, nothing is watched
    problems: list[Problem]
    broken: lastgood.Broken | None = None
    good: dict[str, str] = field(default_factory=dict)


def assemble(config_dir: Path, last_good: lastgood.LastGood = lastgood.nothing) -> Loaded:
    """The policy in force: the file as it is when it validates, else its last good version (domain.lastgood)."""
    path = detection_file(config_dir)
    shown = yamlfile.display_path(path)
    if not path.is_file():
        return Loaded(DetectionConfig(), [])  # no file: watch nothing, on purpose
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        config, problems = None, [Problem(shown, 0, f"cannot read: {exc}")]
    else:
        config, problems = parse(text, shown)
        if config is not None:
            return Loaded(config, [], None, {KEY: text})
    snapshot = last_good(KEY)
    if snapshot is not None:
        previous, later = parse(snapshot.text, shown)
        if previous is not None and not later:
            broken = lastgood.Broken(KEY, shown, tuple(problems), lastgood.LAST_GOOD, snapshot.saved_at)
            return Loaded(previous, problems, broken)
    return Loaded(None, problems, lastgood.Broken(KEY, shown, tuple(problems), lastgood.NONE))


def load(config_dir: Path) -> DetectionConfig:
    config, problems = check(config_dir)
    if problems or config is None:
        raise ConfigProblems(problems)
    return config


def _cross_check(config: DetectionConfig, lines: yamlfile.Lines, shown: str) -> Iterable[Problem]:
    seen: dict[str, int] = {}
    for index, name in enumerate(config.watch):
        if fold(name) in seen:
            yield Problem(shown, lines.of(("watch", index)), f"watch.{index}: '{name}' is listed twice")
        seen.setdefault(fold(name), index)
    keys: set[str] = set()
    for index, probe in enumerate(config.probes):
        if probe.key in keys:
            yield Problem(shown, lines.of(("probes", index)), f"probes.{index}: a second probe named '{probe.key}'")
        keys.add(probe.key)
        for service_index, service in enumerate(probe.services):
            if config.service(service) is None:
                where = ("probes", index, "services", service_index)
                yield Problem(
                    shown, lines.of(where), f"probes.{index}.services: '{service}' is not in watch: (add it there)"
                )
    if config.reports is not None:
        yield from _check_reports(config, config.reports, lines, shown)


def _check_reports(
    config: DetectionConfig, reports: ReportsPolicy, lines: yamlfile.Lines, shown: str
) -> Iterable[Problem]:
    if reports.suite is not None and config.service(reports.suite) is None:
        message = f"reports.suite: '{reports.suite}' is not in watch: (add it there)"
        yield Problem(shown, lines.of(("reports", "suite")), message)
    owners: dict[str, str] = {}
    for service, words in reports.aliases.items():
        line = lines.of(("reports", "aliases", service))
        if config.service(service) is None:
            yield Problem(shown, line, f"reports.aliases: '{service}' is not in watch: (add it there)")
        for word in words:
            if word in reports.keywords:
                yield Problem(shown, line, f"reports.aliases: '{word}' is also a keyword")
            if owners.setdefault(word, service) != service:
                yield Problem(shown, line, f"reports.aliases: '{word}' names both '{owners[word]}' and '{service}'")
