"""Runbooks (runbooks/*.yaml) and the catalog that ties them to contacts and templates.

``check(config_dir, runbooks_dir)`` reports every problem as ``file:line: message``;
``load(config_dir, runbooks_dir)`` returns a :class:`Catalog` or raises
``ConfigProblems``. Nothing here touches a database or a provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from failover.domain import yamlfile
from failover.domain.contacts import Contacts, unknown_refs
from failover.domain.durations import Duration
from failover.domain.templates import Templates
from failover.errors import ConfigProblems, Problem

STEP_CHANNELS = ("sms", "email", "status", "voice")
PERSON_CHANNELS = ("sms", "email", "voice")  # the channels that reach one person (fallback targets)
SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies


class Fallback(BaseModel):
    """Where a step moves a person whose delivery failed for good, and optionally what it says there.

    Written as a channel name (``fallback: [voice, email]``) or as a mapping
    with its own ``template:`` / ``text:`` / ``subject:``; what is left out is
    taken from the step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    template: str | None = None
    text: str | None = None
    subject: str | None = None

    @field_validator("channel")
    @classmethod
    def _person_channel(cls, value: str) -> str:
        if value not in PERSON_CHANNELS:
            raise ValueError(f"a fallback channel must be one of {', '.join(PERSON_CHANNELS)}, not '{value}'")
        return value

    @model_validator(mode="after")
    def _one_text(self) -> Fallback:
        if self.template is not None and self.text is not None:
            raise ValueError("give at most one of template: or text:")
        return self


class Step(BaseModel):
    """One message to send: a channel, recipients and a template (or inline text)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    channel: str
    to: tuple[str, ...] = ()
    template: str | None = None
    text: str | None = None
    subject: str | None = None
    title: str | None = None
    severity: Literal["info", "minor", "major", "critical"] = "major"
    # Receipt-driven fallback: channels tried in order when this step's delivery to a person fails.
    fallback: tuple[Fallback, ...] = ()
    # A check-in asks every recipient to answer: 1 / OK / ACK = can work, 2 = needs help.
    check_in: bool = False

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return [{"channel": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in STEP_CHANNELS:
            raise ValueError(f"unknown channel '{value}'; use one of {', '.join(STEP_CHANNELS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        if (self.template is None) == (self.text is None):
            raise ValueError("give exactly one of template: or text:")
        if self.channel == "status":
            if not self.title:
                raise ValueError("a status step needs a title:")
        elif not self.to:
            raise ValueError(f"a {self.channel} step needs recipients in to:")
        if self.channel == "email" and not self.subject:
            raise ValueError("an email step needs a subject:")
        if self.channel == "status" and (self.fallback or self.check_in):
            raise ValueError("a status step cannot have fallback: or check_in:")
        seen = [self.channel]
        for fallback in self.fallback:
            if fallback.channel in seen:
                raise ValueError(f"fallback: channel '{fallback.channel}' is already tried before it")
            seen.append(fallback.channel)
            if fallback.channel == "email" and not (fallback.subject or self.subject):
                raise ValueError("an email fallback needs a subject: (on the fallback or on the step)")
        return self

    @property
    def chain(self) -> tuple[str, ...]:
        """The step's channel, then its fallback channels, in the order they are tried."""
        return (self.channel, *(fallback.channel for fallback in self.fallback))

    def fallback_step(self, channel: str) -> Step:
        """This step as sent over one of its fallback channels (same recipients, inherited text)."""
        fallback = next(f for f in self.fallback if f.channel == channel)
        if fallback.template is None and fallback.text is None:
            template, text = self.template, self.text
        else:
            template, text = fallback.template, fallback.text
        return Step(
            channel=channel,
            to=self.to,
            template=template,
            text=text,
            subject=fallback.subject or self.subject,
            check_in=self.check_in,
        )


class Escalation(Step):
    """A step sent ``after`` a delay to whoever is still unacknowledged / undelivered."""

    after: Duration
    if_: Literal["unacknowledged", "undelivered"] = Field("unacknowledged", alias="if")


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: tuple[str, ...] = ()
    activation: Literal["auto", "manual", "approval"] = "manual"


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    trigger: Trigger = Trigger()
    drill_group: str | None = None
    steps: tuple[Step, ...] = Field(min_length=1)
    escalation: tuple[Escalation, ...] = ()
    on_resolve: tuple[Step, ...] = ()

    def phase(self, name: str) -> tuple[Step, ...]:
        if name == "steps":
            return self.steps
        if name == "on_resolve":
            return self.on_resolve
        raise KeyError(name)

    def step_at(self, key: str) -> Step | None:
        """The step a ledger row's key names (``steps.0``, ``escalation.1``), if the runbook still has it."""
        phase, _, number = key.partition(".")
        phases: dict[str, tuple[Step, ...]] = {
            "steps": self.steps,
            "on_resolve": self.on_resolve,
            "escalation": self.escalation,
        }
        steps = phases.get(phase, ())
        if not number.isdigit() or int(number) >= len(steps):
            return None
        return steps[int(number)]

    @property
    def check_in(self) -> bool:
        """Whether the runbook asks its recipients to check in (reply 1 or 2)."""
        return any(step.check_in for step in self.steps)


@dataclass(frozen=True)
class Catalog:
    """Everything needed to plan an activation, validated together."""

    contacts: Contacts
    runbooks: dict[str, Runbook]
    templates: Templates
    files: dict[str, str] = field(default_factory=dict)  # runbook id -> file it came from

    def runbook(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)


def contacts_file(config_dir: Path) -> Path:
    return config_dir / "contacts.yaml"


def runbook_files(runbooks_dir: Path) -> list[Path]:
    if not runbooks_dir.is_dir():
        return []
    return sorted(p for p in runbooks_dir.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def check(config_dir: Path, runbooks_dir: Path) -> tuple[Catalog | None, list[Problem]]:
    """Load and cross-check everything; return the catalog (if usable) and all problems."""
    problems: list[Problem] = []
    contacts = _load_contacts(contacts_file(config_dir), problems)
    templates = Templates(runbooks_dir / "templates")
    runbooks: dict[str, Runbook] = {}
    files: dict[str, str] = {}
    paths = runbook_files(runbooks_dir)
    if not paths:
        problems.append(Problem(yamlfile.display_path(runbooks_dir), 0, "no runbooks (*.yaml) found"))
    for path in paths:
        shown = yamlfile.display_path(path)
        doc = yamlfile.load(_read(path, problems), shown)
        problems.extend(doc.problems)
        if doc.data is None:
            if not doc.problems:
                problems.append(Problem(shown, 0, "empty runbook file"))
            continue
        if not isinstance(doc.data, dict):
            problems.append(Problem(shown, 1, "a runbook must be a mapping of keys"))
            continue
        try:
            runbook = Runbook.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(yamlfile.pydantic_problems(exc.errors(), doc.lines, shown))
            # Still check the steps that are well-formed, so one run reports everything.
            problems.extend(_check_raw_steps(doc.data, contacts, templates, doc.lines, shown))
            continue
        if runbook.id in runbooks:
            line = doc.lines.of(("id",))
            problems.append(Problem(shown, line, f"duplicate runbook id '{runbook.id}' (also in {files[runbook.id]})"))
            continue
        file_problems = list(_cross_check(runbook, contacts, templates, doc.lines, shown))
        problems.extend(file_problems)
        if not file_problems:
            runbooks[runbook.id] = runbook
            files[runbook.id] = shown
    problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.message))
    if contacts is None:
        return None, problems
    return Catalog(contacts, runbooks, templates, files), problems


def load(config_dir: Path, runbooks_dir: Path) -> Catalog:
    catalog, problems = check(config_dir, runbooks_dir)
    if problems or catalog is None:
        raise ConfigProblems(problems)
    return catalog


PHASES: tuple[tuple[str, type[Step]], ...] = (("steps", Step), ("escalation", Escalation), ("on_resolve", Step))


def _cross_check(
    runbook: Runbook, contacts: Contacts | None, templates: Templates, lines: yamlfile.Lines, shown: str
) -> Iterator[Problem]:
    if contacts is not None and runbook.drill_group and runbook.drill_group not in contacts.groups:
        yield Problem(shown, lines.of(("drill_group",)), f"drill_group: unknown group '{runbook.drill_group}'")
    for phase, _ in PHASES:
        for index, step in enumerate(getattr(runbook, phase)):
            yield from _check_step(step, phase, index, contacts, templates, lines, shown)


def _check_raw_steps(
    data: dict[str, Any], contacts: Contacts | None, templates: Templates, lines: yamlfile.Lines, shown: str
) -> Iterator[Problem]:
    for phase, model in PHASES:
        raw_steps = data.get(phase)
        if not isinstance(raw_steps, list):
            continue
        for index, raw in enumerate(raw_steps):
            try:
                step = model.model_validate(raw)
            except ValidationError:
                continue  # already reported with the whole runbook
            yield from _check_step(step, phase, index, contacts, templates, lines, shown)


def _check_step(
    step: Step,
    phase: str,
    index: int,
    contacts: Contacts | None,
    templates: Templates,
    lines: yamlfile.Lines,
    shown: str,
) -> Iterator[Problem]:
    if contacts is not None:
        for ref_index, ref in enumerate(step.to):
            for message in unknown_refs(contacts, [ref]):
                where = (phase, index, "to", ref_index)
                yield Problem(shown, lines.of(where), f"{phase}.{index}.to: {message}")
    for problem in templates.check(name=step.template, text=step.text):
        if problem.file:  # located in the template file itself
            yield problem
        else:
            key = "template" if step.template is not None else "text"
            yield Problem(shown, lines.of((phase, index, key)), f"{phase}.{index}.{key}: {problem.message}")
    for number, fallback in enumerate(step.fallback):
        if fallback.template is None and fallback.text is None:
            continue  # the step's own text, checked above
        for problem in templates.check(name=fallback.template, text=fallback.text):
            if problem.file:
                yield problem
            else:
                key = "template" if fallback.template is not None else "text"
                line = lines.of((phase, index, "fallback", number, key))
                yield Problem(shown, line, f"{phase}.{index}.fallback.{number}.{key}: {problem.message}")


def _load_contacts(path: Path, problems: list[Problem]) -> Contacts | None:
    shown = yamlfile.display_path(path)
    if not path.is_file():
        problems.append(Problem(shown, 0, "contacts file not found"))
        return None
    doc = yamlfile.load(_read(path, problems), shown)
    problems.extend(doc.problems)
    if doc.data is None:
        return Contacts() if not doc.problems else None
    if not isinstance(doc.data, dict):
        problems.append(Problem(shown, 1, "contacts must be a mapping with people: and groups:"))
        return None
    try:
        contacts = Contacts.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(yamlfile.pydantic_problems(exc.errors(), doc.lines, shown))
        return None
    seen: dict[str, int] = {}
    for index, person in enumerate(contacts.people):
        if person.id in seen:
            line = doc.lines.of(("people", index, "id"))
            problems.append(Problem(shown, line, f"people.{index}.id: duplicate person id '{person.id}'"))
        seen.setdefault(person.id, index)
        for group_index, group in enumerate(person.groups):
            if group not in contacts.groups:
                where = ("people", index, "groups", group_index)
                problems.append(Problem(shown, doc.lines.of(where), f"people.{index}.groups: unknown group '{group}'"))
    return contacts


def _read(path: Path, problems: list[Problem]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(yamlfile.display_path(path), 0, f"cannot read: {exc}"))
        return ""
