"""contacts.listed: contacts.yaml's groups and person ids, streamed, for a file the people table holds already."""

from __future__ import annotations

import yaml

from failover.domain.contacts import Listed, listed
from tests.conftest import make_people


def test_groups_and_ids_without_the_people() -> None:
    people = make_people(200, groups=("oncall", "all-staff"))
    groups = {"oncall": {"description": "IT on call"}, "all-staff": {"description": "Everyone: 'quoted', #1"}}
    text = yaml.safe_dump({"people": people, "groups": groups}, sort_keys=False)  # people first, then groups
    found = listed(text)
    assert isinstance(found, Listed) and found.people == ()
    assert {name: g.description for name, g in found.groups.items()} == {
        "oncall": "IT on call",
        "all-staff": "Everyone: 'quoted', #1",
    }
    assert found.ids == {p["id"] for p in people}
    person = found.person(people[7]["id"])
    assert person is not None and person.id == people[7]["id"]
    assert found.person("nobody") is None


def test_empty_sections_and_flow_style_groups() -> None:
    found = listed("groups: {oncall: {description: x}}\npeople:\n")
    assert found is not None and set(found.groups) == {"oncall"} and found.ids == frozenset()


def test_anything_unexpected_means_parse_it_whole() -> None:
    assert listed("people:\n  - id: a\n    name: A\n  - id: a\n    name: B\n") is None  # duplicate id
    assert listed("people:\n  - id: &x a\n    name: A\n  - id: *x\n    name: B\n") is None  # an alias
    assert listed("- just\n- a list\n") is None
    assert listed("people: [\n") is None  # broken YAML
    assert listed("groups:\n  oncall:\n    colour: red\n") is None  # a field Group does not have
    assert listed("extra: 1\n") is None
