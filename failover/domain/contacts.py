"""People and groups (config/contacts.yaml): who can be reached, and how."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import phonenumbers
from pydantic import BaseModel, ConfigDict, EmailStr, Field, PrivateAttr, field_validator

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_phone(value: str) -> str:
    """Validate an E.164 number with phonenumbers; return it in canonical form."""
    text = str(value).strip()
    if not E164.match(text):
        raise ValueError(f"'{text}' is not an E.164 number such as +12025550101")
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"'{text}' is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"'{text}' is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    phone: str | None = None
    email: EmailStr | None = None
    groups: tuple[str, ...] = ()
    # Optional attributes (synced from Entra ID or a CSV): rule groups match on them, templates may use them.
    department: str | None = None
    office_location: str | None = None
    job_title: str | None = None
    language: str | None = None  # "de", "fr": picks a template variant (sms/outage.de.txt) when there is one

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: object) -> str | None:
        if value is None or value == "":
            return None
        return normalise_phone(str(value))


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""


class Contacts(BaseModel):
    """The validated contents of contacts.yaml, with lookups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    people: tuple[Person, ...] = ()
    groups: dict[str, Group] = Field(default_factory=dict)

    _by_id: dict[str, Person] = PrivateAttr(default_factory=dict)
    _by_phone: dict[str, Person] = PrivateAttr(default_factory=dict)
    _members: dict[str, list[Person]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: object) -> None:
        self._by_id = {person.id: person for person in self.people}
        self._by_phone = {person.phone: person for person in self.people if person.phone}
        self._members = {name: [] for name in self.groups}
        for person in self.people:
            for group in person.groups:
                self._members.setdefault(group, []).append(person)

    def person(self, person_id: str) -> Person | None:
        return self._by_id.get(person_id)

    def members(self, group: str) -> list[Person]:
        return list(self._members.get(group, ()))

    def by_phone(self, phone: str) -> Person | None:
        return self._by_phone.get(phone)


class Directory(Protocol):
    """Who can be reached: contacts.yaml in memory (``Contacts``) or the people table (engine.directory)."""

    @property
    def groups(self) -> Mapping[str, Group]: ...

    def person(self, person_id: str) -> Person | None: ...

    def members(self, group: str) -> list[Person]: ...

    def by_phone(self, phone: str) -> Person | None: ...


def parse_ref(ref: str) -> tuple[str, str]:
    """``group:oncall`` -> ("group", "oncall"); ``person:alice`` or ``alice`` -> ("person", "alice")."""
    kind, sep, name = ref.partition(":")
    if not sep:
        return "person", ref
    return kind, name


def unknown_refs(contacts: Directory, refs: Iterable[str]) -> list[str]:
    """Messages for each reference that names no person or group."""
    problems = []
    for ref in refs:
        kind, name = parse_ref(ref)
        if kind == "group" and name not in contacts.groups:
            problems.append(f"unknown group '{name}'")
        elif kind == "person" and contacts.person(name) is None:
            problems.append(f"unknown person '{name}'")
        elif kind not in {"group", "person"}:
            problems.append(f"'{ref}' is neither group:NAME nor person:ID")
    return problems


class Listed(Contacts):
    """contacts.yaml's groups and person ids only, for a file whose people the people table holds already.

    A worker must not parse 50,000 people to learn what the table says (issue 17: worker memory flat in the
    number of people); the catalog reads people from the table, and the runbooks' ``person:ID`` references are
    checked against the ids the file lists.
    """

    ids: frozenset[str] = frozenset()

    def person(self, person_id: str) -> Person | None:
        return Person(id=person_id, name=person_id) if person_id in self.ids else None


def listed(text: str) -> Listed | None:
    """contacts.yaml's ``groups:`` and its people's ids, streamed (memory does not grow with the people).

    None when the file is not laid out as expected (the caller then parses it whole and reports its problems).
    """
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        return _listed(loader, text)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError):
        return None
    finally:
        loader.dispose()


def _listed(loader: Any, text: str) -> Listed | None:
    import yaml
    from yaml import events

    def expect(kind: type) -> Any:
        event = loader.get_event()
        if not isinstance(event, kind):
            raise ValueError(f"expected {kind.__name__}")
        return event

    def skip(first: Any) -> Any:
        """Consume the node that starts with ``first``; returns its last event."""
        depth, last = 0, first
        while True:
            if isinstance(last, events.MappingStartEvent | events.SequenceStartEvent):
                depth += 1
            elif isinstance(last, events.MappingEndEvent | events.SequenceEndEvent):
                depth -= 1
            if depth == 0:
                return last
            last = loader.get_event()

    expect(events.StreamStartEvent)
    expect(events.DocumentStartEvent)
    expect(events.MappingStartEvent)
    groups: Any = {}
    ids: list[str] = []
    while True:
        key = loader.get_event()
        if isinstance(key, events.MappingEndEvent):
            break
        if not isinstance(key, events.ScalarEvent):
            raise ValueError("a key that is not a scalar")
        first = loader.get_event()
        if key.value == "groups" and isinstance(first, events.MappingStartEvent):
            last = skip(first)  # the groups are few: parse their slice of the text as YAML of its own
            start, end = first.start_mark, last.end_mark
            if start is None or end is None:
                raise ValueError("no marks")
            piece = " " * start.column + text[start.index : end.index]
            groups = yaml.safe_load(piece) or {}
        elif key.value == "people" and isinstance(first, events.SequenceStartEvent):
            while True:
                item = loader.get_event()
                if isinstance(item, events.SequenceEndEvent):
                    break
                if not isinstance(item, events.MappingStartEvent):
                    raise ValueError("a person that is not a mapping")
                while True:
                    field = loader.get_event()
                    if isinstance(field, events.MappingEndEvent):
                        break
                    value = loader.get_event()
                    if isinstance(field, events.ScalarEvent) and field.value == "id":
                        if not isinstance(value, events.ScalarEvent):
                            raise ValueError("an id that is not a scalar")
                        ids.append(value.value)
                    else:
                        skip(value)
        elif isinstance(first, events.ScalarEvent) and first.value in ("", "~", "null") and first.implicit[0]:
            continue  # groups: or people: left empty
        else:
            raise ValueError(f"unexpected {key.value}:")
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate ids")
    return Listed(groups=groups, ids=frozenset(ids))
