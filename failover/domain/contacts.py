"""People and groups (config/contacts.yaml): who can be reached, and how."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol

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
