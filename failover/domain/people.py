"""The people directory, pure: records from sources, how they merge, rule groups, snapshot diffs and safety.

A *source* (contacts.yaml, a CSV file, Microsoft Graph users, the self-service
page) yields :class:`Record` values keyed by person id. Sources are merged per
person in :data:`PRECEDENCE` order: a later source's non-empty fields win and
listed groups add up, so contacts.yaml can override one field of a person
synced from Entra ID. Group membership is the listed groups plus every rule
group (``config/people.yaml``) whose rules the merged person matches; it is
re-evaluated at each snapshot.

A sync's outcome is a :class:`Diff` (added / changed / removed / unchanged);
:func:`refusal` says why a diff must not replace the roster (too many
removals) unless an admin accepts it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from failover.domain import yamlfile
from failover.domain.contacts import Group, Person
from failover.domain.durations import Duration
from failover.errors import Problem

# Lowest first: later sources override earlier ones field by field.
PRECEDENCE = ("graph", "csv", "yaml", "self")
FIELDS = ("name", "phone", "email", "department", "office_location", "job_title", "language")
SHOWN_ROWS = 5  # first rows of each kind a dry run or a snapshot diff shows


@dataclass(frozen=True)
class Record:
    """One person as one source knows them. Empty strings and None both mean "this source does not say"."""

    id: str
    name: str = ""
    phone: str | None = None
    email: str | None = None
    department: str | None = None
    office_location: str | None = None
    job_title: str | None = None
    language: str | None = None
    groups: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["groups"] = list(self.groups)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["groups"] = tuple(values.get("groups") or ())
        return cls(**values)


def merge(records: Mapping[str, Record]) -> Record | None:
    """One person from what each source says (``records``: source -> record); None when no source has them.

    What a person entered themselves (``self``) overrides fields but never keeps someone in the roster
    whom every other source has dropped."""
    if not any(source != "self" for source in records):
        return None
    merged: Record | None = None
    for source in sorted(records, key=_rank):
        record = records[source]
        if merged is None:
            merged = record
            continue
        updates: dict[str, Any] = {name: getattr(record, name) for name in FIELDS if getattr(record, name)}
        updates["groups"] = tuple(dict.fromkeys([*merged.groups, *record.groups]))
        merged = replace(merged, **updates)
    if merged is not None and not merged.name:
        merged = replace(merged, name=merged.id)
    return merged


def _rank(source: str) -> int:
    return PRECEDENCE.index(source) if source in PRECEDENCE else len(PRECEDENCE)


# -- rule groups --------------------------------------------------------------------------


class Rules(BaseModel):
    """Attribute rules of a group; a person matches when every rule given matches (case-insensitive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: str | list[str] | None = None  # equals (any of)
    office_location: str | None = None  # glob: "Berlin*"
    job_title: str | None = None  # contains
    upn: list[str] | None = None  # these person ids

    @model_validator(mode="after")
    def _something(self) -> Rules:
        if self.department is None and self.office_location is None and self.job_title is None and self.upn is None:
            raise ValueError("a rule group needs at least one of department, office_location, job_title, upn")
        return self

    def matches(self, record: Record) -> bool:
        if self.department is not None:
            wanted = [self.department] if isinstance(self.department, str) else self.department
            if (record.department or "").casefold() not in {d.casefold() for d in wanted}:
                return False
        if self.office_location is not None and not fnmatch.fnmatchcase(
            (record.office_location or "").casefold(), self.office_location.casefold()
        ):
            return False
        if self.job_title is not None and self.job_title.casefold() not in (record.job_title or "").casefold():
            return False
        return self.upn is None or record.id.casefold() in {u.casefold() for u in self.upn}


class RuleGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    rules: Rules
    required: bool = False  # a snapshot that would leave it empty is refused


def _percent(value: Any) -> Any:
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100
    return value


Share = Annotated[float, BeforeValidator(_percent), Field(ge=0, le=1)]


class Safety(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_removal: Share = 0.10
    stale_after: Duration = dt.timedelta(hours=48)


class Mapping_(BaseModel):
    """Which Entra ID field fills which contact field (Graph names, camelCase)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = "userPrincipalName"
    name: str = "displayName"
    phone: list[str] = ["mobilePhone", "businessPhones"]
    email: str | None = None  # the personal address is not in Entra: e.g. an extension attribute
    department: str = "department"
    office_location: str = "officeLocation"
    job_title: str = "jobTitle"
    language: list[str] = ["preferredLanguage", "usageLocation"]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["graph", "csv", "yaml"]
    interval: Duration = dt.timedelta(hours=6)  # graph: how often beat syncs
    path: str | None = None  # csv: relative to config/
    default_region: str = "US"  # csv: for numbers written without +country
    mapping: Mapping_ = Mapping_()

    @model_validator(mode="after")
    def _path(self) -> Source:
        if self.kind == "csv" and not self.path:
            raise ValueError("a csv source needs a path")
        return self


class PeopleConfig(BaseModel):
    """config/people.yaml (optional; without it contacts.yaml is the only source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[Source] = [Source(kind="yaml")]
    groups: dict[str, RuleGroup] = {}
    safety: Safety = Safety()
    languages: list[str] = []  # template variants to look for besides the default

    def source(self, kind: str) -> Source | None:
        return next((s for s in self.sources if s.kind == kind), None)

    def signature(self) -> str:
        """Changes when the rules change, so every membership is re-evaluated."""
        rules = repr(sorted((name, group.rules.model_dump_json()) for name, group in self.groups.items()))
        return hashlib.sha256(rules.encode()).hexdigest()


def people_file(config_dir: Path) -> Path:
    return config_dir / "people.yaml"


def load_config(path: Path, problems: list[Problem]) -> PeopleConfig:
    """people.yaml validated (problems appended as file:line); defaults without the file or when it is broken."""
    if not path.is_file():
        return PeopleConfig()
    shown = yamlfile.display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(shown, 0, f"cannot read: {exc}"))
        return PeopleConfig()
    doc = yamlfile.load(text, shown)
    problems.extend(doc.problems)
    if doc.data is None:
        return PeopleConfig()
    if not isinstance(doc.data, dict):
        problems.append(Problem(shown, 1, "people.yaml must be a mapping of keys"))
        return PeopleConfig()
    try:
        config = PeopleConfig.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(yamlfile.pydantic_problems(exc.errors(), doc.lines, shown))
        return PeopleConfig()
    kinds = [s.kind for s in config.sources]
    for index, kind in enumerate(kinds):
        if kind in kinds[:index]:
            problems.append(Problem(shown, doc.lines.of(("sources", index)), f"sources.{index}: '{kind}' given twice"))
    return config


def rule_groups_as_groups(config: PeopleConfig) -> dict[str, Group]:
    return {name: Group(description=group.description) for name, group in config.groups.items()}


def memberships(record: Record, config: PeopleConfig) -> tuple[str, ...]:
    """Listed groups, then every rule group the person matches."""
    ruled = [name for name, group in config.groups.items() if group.rules.matches(record)]
    return tuple(dict.fromkeys([*record.groups, *ruled]))


def as_person(record: Record, groups: Iterable[str]) -> Person:
    """A stored (already validated) record as the Person planning reads, without validating again."""
    return Person.model_construct(
        id=record.id,
        name=record.name or record.id,
        phone=record.phone,
        email=record.email,
        groups=tuple(groups),
        department=record.department,
        office_location=record.office_location,
        job_title=record.job_title,
        language=record.language,
    )


def person_of(
    person_id: str,
    name: str,
    phone: str | None,
    email: str | None,
    department: str | None,
    office_location: str | None,
    job_title: str | None,
    language: str | None,
    groups: Iterable[str],
) -> Person:
    """``as_person`` for bulk reads: sets the validated fields directly (model_construct costs 5x more)."""
    person = Person.__new__(Person)
    values = {
        "id": person_id,
        "name": name or person_id,
        "phone": phone,
        "email": email,
        "groups": tuple(groups),
        "department": department,
        "office_location": office_location,
        "job_title": job_title,
        "language": language,
    }
    object.__setattr__(person, "__dict__", values)
    object.__setattr__(person, "__pydantic_fields_set__", set(values))
    object.__setattr__(person, "__pydantic_extra__", None)
    object.__setattr__(person, "__pydantic_private__", None)
    return person


def from_person(person: Person) -> Record:
    return Record(
        id=person.id,
        name=person.name,
        phone=person.phone,
        email=str(person.email) if person.email else None,
        department=person.department,
        office_location=person.office_location,
        job_title=person.job_title,
        language=person.language,
        groups=tuple(person.groups),
    )


# -- diffs and safety -----------------------------------------------------------------------


@dataclass
class Diff:
    added: list[Record] = field(default_factory=list)
    changed: list[tuple[Record, Record]] = field(default_factory=list)  # (before, after)
    removed: list[Record] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
        }

    def sample(self, rows: int = SHOWN_ROWS) -> dict[str, list[dict[str, Any]]]:
        """The first rows of each kind, ids and the fields that changed (no phone numbers or addresses)."""
        return {
            "added": [{"id": r.id, "name": r.name} for r in self.added[:rows]],
            "changed": [{"id": a.id, "fields": changed_fields(b, a)} for b, a in self.changed[:rows]],
            "removed": [{"id": r.id, "name": r.name} for r in self.removed[:rows]],
        }


def changed_fields(before: Record, after: Record) -> list[str]:
    return [f.name for f in fields(Record) if getattr(before, f.name) != getattr(after, f.name)]


def diff(before: Mapping[str, Record], after: Mapping[str, Record | None]) -> Diff:
    """What replacing ``before[id]`` by ``after[id]`` (None: gone) does, for the ids in ``after``."""
    result = Diff()
    for person_id in sorted(after):
        old, new = before.get(person_id), after[person_id]
        if old is None and new is not None:
            result.added.append(new)
        elif old is not None and new is None:
            result.removed.append(old)
        elif old is not None and new is not None:
            if old == new:
                result.unchanged += 1
            else:
                result.changed.append((old, new))
    return result


def refusal(diff_: Diff, *, active: int, max_removal: float) -> str | None:
    """Why this diff must not replace the roster without an admin's accept; None when it may."""
    if active and diff_.removed and len(diff_.removed) > max_removal * active:
        share = len(diff_.removed) / active
        return (
            f"it would remove {len(diff_.removed)} of {active} people ({share:.0%}), "
            f"more than max_removal {max_removal:.0%}"
        )
    return None
