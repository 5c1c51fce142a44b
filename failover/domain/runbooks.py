"""Runbooks (runbooks/*.yaml) and the catalog that ties them to contacts and templates.

``check(config_dir, runbooks_dir)`` reports every problem as ``file:line: message``;
``load(config_dir, runbooks_dir)`` returns a :class:`Catalog` or raises
``ConfigProblems``; ``assemble`` (what running processes use) builds the
catalog in force, each broken file replaced by its last good version
(see :mod:`failover.domain.lastgood`). Nothing here touches a database or a
provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from failover.domain import lastgood, people, rooms, yamlfile
from failover.domain.bridge import DEFAULT_TEXT as BRIDGE_TEXT
from failover.domain.bridge import BridgeSpec
from failover.domain.contacts import Contacts, Directory, listed, unknown_refs
from failover.domain.durations import Duration
from failover.domain.polls import FollowUp, PollSpec, follow_up_entry
from failover.domain.templates import UPDATE_FOLDER, Templates
from failover.errors import ConfigProblems, Problem

STEP_CHANNELS = ("sms", "email", "status", "voice", "chat")
PERSON_CHANNELS = ("sms", "email", "voice")  # the channels that reach one person (fallback targets)
SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies
CONTACTS_KEY = "config/contacts.yaml"  # its key among the last good texts


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
    # A poll asks a question with numbered answers (domain.polls); its text is the question.
    poll: PollSpec | None = None
    follow_up: FollowUp | None = None
    # {channel: bridge} is an SMS with the bridge line (domain.bridge); dial: calls people into it.
    bridge: BridgeSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _bridge_step(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("channel") == "bridge":
            rest = {k: v for k, v in data.items() if k != "dial"}
            text = {} if "text" in data or "template" in data else {"text": BRIDGE_TEXT}
            return {**rest, **text, "channel": "sms", "bridge": {"dial": data.get("dial") or []}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _poll_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("poll"), dict) and "text" not in data:
            if "template" not in data:
                try:
                    return {**data, "text": PollSpec.model_validate(data["poll"]).text()}
                except ValueError:
                    return data  # the poll field reports what is wrong with it
        return data

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
        if self.channel == "chat":
            if self.fallback or self.check_in:
                raise ValueError("a chat step cannot have fallback: or check_in: (rooms are not people)")
            if not all(rooms.room_name(ref) for ref in self.to):
                raise ValueError("a chat step posts to rooms: write to: [room:NAME, ...] (config/chat.yaml)")
        elif any(rooms.room_name(ref) for ref in self.to):
            raise ValueError(f"room: recipients are for chat steps, not {self.channel}")
        if self.poll is not None and self.channel != "sms":
            raise ValueError("a poll: is asked by SMS (channel: sms)")
        if self.follow_up is not None and self.poll is None:
            raise ValueError("follow_up: belongs to a poll: step")
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

    @model_validator(mode="after")
    def _people_only(self) -> Escalation:
        if self.channel == "chat":
            raise ValueError("an escalation reaches people who did not answer: it cannot post to chat rooms")
        return self


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

    @model_validator(mode="before")
    @classmethod
    def _poll_follow_ups(cls, data: Any) -> Any:
        """Each poll's follow_up becomes one more escalation entry, after those written (indexes stay put)."""
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            return data
        extra = [e for step in data["steps"] if isinstance(step, dict) and (e := follow_up_entry(step)) is not None]
        if not extra:
            return data
        written = data.get("escalation") or []
        return {**data, "escalation": [*written, *extra]} if isinstance(written, list) else data

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

    @property
    def bridges(self) -> dict[str, BridgeSpec]:
        """The bridge steps by ledger key."""
        return {f"steps.{i}": step.bridge for i, step in enumerate(self.steps) if step.bridge is not None}

    @property
    def polls(self) -> dict[str, PollSpec]:
        """The poll steps by ledger key (``steps.2``)."""
        return {f"steps.{i}": step.poll for i, step in enumerate(self.steps) if step.poll is not None}


@dataclass(frozen=True)
class Catalog:
    """Everything needed to plan an activation, validated together."""

    contacts: Directory  # contacts.yaml as loaded; at run time the people table (engine.directory)
    runbooks: dict[str, Runbook]
    templates: Templates
    files: dict[str, str] = field(default_factory=dict)  # runbook id -> file it came from
    rooms: rooms.Rooms = field(default_factory=rooms.Rooms)  # config/chat.yaml: where chat steps post

    def runbook(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)


def contacts_file(config_dir: Path) -> Path:
    return config_dir / "contacts.yaml"


def runbook_files(runbooks_dir: Path) -> list[Path]:
    if not runbooks_dir.is_dir():
        return []
    return sorted(p for p in runbooks_dir.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


@dataclass(frozen=True)
class Loaded:
    """The catalog in force, every problem found, and which files it took from their last good version."""

    catalog: Catalog | None  # None: no contacts are in force, so nothing can be planned
    problems: list[Problem]
    broken: tuple[lastgood.Broken, ...] = ()
    good: dict[str, str] = field(default_factory=dict)  # key -> text of each file that validated as it is
    versions: dict[str, str] = field(default_factory=dict)  # runbook id -> lastgood.CURRENT | LAST_GOOD


def check(config_dir: Path, runbooks_dir: Path) -> tuple[Catalog | None, list[Problem]]:
    """Load and cross-check the files as they are; return the catalog (if usable) and all problems."""
    loaded = assemble(config_dir, runbooks_dir)
    return loaded.catalog, loaded.problems


def load(config_dir: Path, runbooks_dir: Path) -> Catalog:
    catalog, problems = check(config_dir, runbooks_dir)
    if problems or catalog is None:
        raise ConfigProblems(problems)
    return catalog


def assemble(
    config_dir: Path,
    runbooks_dir: Path,
    last_good: lastgood.LastGood = lastgood.nothing,
    known: Callable[[str], bool] = lambda text: False,
) -> Loaded:
    """Every file judged on its own: as it is when it validates, else its last good version (domain.lastgood).

    ``known(text)``: the people table holds this very contacts.yaml already; then only its groups and person
    ids are read (contacts.Listed), not its people.
    """
    problems: list[Problem] = []
    broken: list[lastgood.Broken] = []
    good: dict[str, str] = {}
    templates = _templates(runbooks_dir / "templates", last_good, good, broken, problems)
    contacts, flawed = _contacts(contacts_file(config_dir), last_good, good, broken, problems, known)
    chat_rooms, room_problems = rooms.load(rooms.chat_file(config_dir))
    problems.extend(room_problems)
    # Rule groups of config/people.yaml may be addressed like the groups of contacts.yaml.
    rule_groups = people.rule_groups_as_groups(people.load_config(people.people_file(config_dir), problems))
    if rule_groups:
        contacts, flawed = (
            c.model_copy(update={"groups": {**rule_groups, **c.groups}}) if c is not None else None
            for c in (contacts, flawed)
        )
    runbooks: dict[str, Runbook] = {}
    files: dict[str, str] = {}
    versions: dict[str, str] = {}
    paths = runbook_files(runbooks_dir)
    if not paths:
        problems.append(Problem(yamlfile.display_path(runbooks_dir), 0, "no runbooks (*.yaml) found"))
    failing: list[tuple[str, str, list[Problem]]] = []
    for path in paths:
        key, shown = f"runbooks/{path.name}", yamlfile.display_path(path)
        found: list[Problem] = []
        text = _read(path, found)
        # Against the contacts in force; while none are, against the file as it is, to report everything at once.
        runbook, lines = _runbook(text, shown, contacts or flawed, templates, found, chat_rooms)
        if runbook is not None and not found and runbook.id in runbooks:
            where = lines.of(("id",))
            found.append(Problem(shown, where, f"duplicate runbook id '{runbook.id}' (also in {files[runbook.id]})"))
        if runbook is None or found:
            failing.append((key, shown, found))
            continue
        runbooks[runbook.id], files[runbook.id], versions[runbook.id] = runbook, shown, lastgood.CURRENT
        if contacts is not None:
            good[key] = text
    for key, shown, found in failing:
        problems.extend(found)
        previous, snapshot = None, last_good(key) if contacts is not None else None
        if snapshot is not None:
            later: list[Problem] = []
            previous, _ = _runbook(snapshot.text, shown, contacts, templates, later, chat_rooms)
            if later or (previous is not None and previous.id in runbooks):
                previous = None  # it no longer fits the contacts or templates in force, or its id is taken
        if previous is None:
            broken.append(lastgood.Broken(key, shown, tuple(found), lastgood.NONE))
            continue
        runbooks[previous.id], files[previous.id], versions[previous.id] = previous, shown, lastgood.LAST_GOOD
        assert snapshot is not None
        broken.append(lastgood.Broken(key, shown, tuple(found), lastgood.LAST_GOOD, snapshot.saved_at, previous.id))
    problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.message))
    catalog = Catalog(contacts, runbooks, templates, files, chat_rooms) if contacts is not None else None
    return Loaded(catalog, problems, tuple(broken), good, versions)


def _templates(
    directory: Path,
    last_good: lastgood.LastGood,
    good: dict[str, str],
    broken: list[lastgood.Broken],
    problems: list[Problem],
) -> Templates:
    """The templates, with the last good text standing in for each file that is broken now.

    A broken template without a last good version is reported by the runbooks that use it.
    """
    files = Templates(directory)
    overrides: dict[str, str] = {}
    for name in files.names():
        if name.startswith(UPDATE_FOLDER):
            continue  # texts for incident updates, checked with their own names when one is sent
        key = f"templates/{name}"
        found = files.check(name=name)
        if not found:
            good[key] = files.source_of(name)[0]
            continue
        snapshot = last_good(key)
        where = yamlfile.display_path(directory / name)
        if snapshot is None or files.check_source(snapshot.text, where):
            continue
        overrides[name] = snapshot.text
        problems.extend(found)
        broken.append(lastgood.Broken(key, where, tuple(found), lastgood.LAST_GOOD, snapshot.saved_at))
    return Templates(directory, overrides) if overrides else files


def _contacts(
    path: Path,
    last_good: lastgood.LastGood,
    good: dict[str, str],
    broken: list[lastgood.Broken],
    problems: list[Problem],
    known: Callable[[str], bool] = lambda text: False,
) -> tuple[Contacts | None, Contacts | None]:
    """(contacts in force, contacts as the broken file has them - for cross-checking runbooks only)."""
    key, shown = CONTACTS_KEY, yamlfile.display_path(path)
    found: list[Problem] = []
    contacts: Contacts | None = None
    if path.is_file():
        text = _read(path, found)
        if not found and known(text):
            contacts = listed(text)  # validated when it was adopted; None: parse it whole after all
            if contacts is not None:
                good[key] = text
                return contacts, None
        contacts = _parse_contacts(text, shown, found)
        if contacts is not None and not found:
            good[key] = text
            return contacts, None
    else:
        found.append(Problem(shown, 0, "contacts file not found"))
    problems.extend(found)
    snapshot = last_good(key)
    if snapshot is not None:
        later: list[Problem] = []
        previous = _parse_contacts(snapshot.text, shown, later)
        if previous is not None and not later:
            broken.append(lastgood.Broken(key, shown, tuple(found), lastgood.LAST_GOOD, snapshot.saved_at))
            return previous, None
    broken.append(lastgood.Broken(key, shown, tuple(found), lastgood.NONE))
    return None, contacts


def _runbook(
    text: str,
    shown: str,
    contacts: Contacts | None,
    templates: Templates,
    problems: list[Problem],
    chat_rooms: rooms.Rooms | None = None,
) -> tuple[Runbook | None, yamlfile.Lines]:
    """One runbook file's text, validated and cross-checked; problems are appended. Returns (runbook, its lines)."""
    doc = yamlfile.load(text, shown)
    problems.extend(doc.problems)
    if doc.data is None:
        if not doc.problems:
            problems.append(Problem(shown, 0, "empty runbook file"))
        return None, doc.lines
    if not isinstance(doc.data, dict):
        problems.append(Problem(shown, 1, "a runbook must be a mapping of keys"))
        return None, doc.lines
    try:
        runbook = Runbook.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(yamlfile.pydantic_problems(exc.errors(), doc.lines, shown))
        # Still check the steps that are well-formed, so one run reports everything.
        problems.extend(_check_raw_steps(doc.data, contacts, templates, doc.lines, shown))
        return None, doc.lines
    problems.extend(_cross_check(runbook, contacts, templates, doc.lines, shown))
    problems.extend(_check_rooms(runbook, chat_rooms or rooms.Rooms(), doc.lines, shown))
    return runbook, doc.lines


PHASES: tuple[tuple[str, type[Step]], ...] = (("steps", Step), ("escalation", Escalation), ("on_resolve", Step))


def _cross_check(
    runbook: Runbook, contacts: Contacts | None, templates: Templates, lines: yamlfile.Lines, shown: str
) -> Iterator[Problem]:
    if contacts is not None and runbook.drill_group and runbook.drill_group not in contacts.groups:
        yield Problem(shown, lines.of(("drill_group",)), f"drill_group: unknown group '{runbook.drill_group}'")
    for phase, _ in PHASES:
        for index, step in enumerate(getattr(runbook, phase)):
            yield from _check_step(step, phase, index, contacts, templates, lines, shown)


def _check_rooms(runbook: Runbook, chat_rooms: rooms.Rooms, lines: yamlfile.Lines, shown: str) -> Iterator[Problem]:
    """Every room a chat step names is in config/chat.yaml."""
    for phase, _ in PHASES:
        for index, step in enumerate(getattr(runbook, phase)):
            if step.channel != "chat":
                continue
            for ref_index, ref in enumerate(step.to):
                name = rooms.room_name(ref)
                if name is not None and chat_rooms.get(name) is None:
                    where = lines.of((phase, index, "to", ref_index))
                    yield Problem(shown, where, f"{phase}.{index}.to: unknown room '{name}' (not in config/chat.yaml)")


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
    if contacts is not None and step.channel != "chat":  # rooms are checked against config/chat.yaml
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


def _parse_contacts(text: str, shown: str, problems: list[Problem]) -> Contacts | None:
    """contacts.yaml's text, validated; problems are appended (the contacts may come back flawed)."""
    doc = yamlfile.load(text, shown)
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
