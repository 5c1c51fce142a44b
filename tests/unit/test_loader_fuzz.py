"""The YAML loaders cannot crash: a wrong type at any key is a ``file:line: message`` problem, never a traceback.

Hypothesis takes a valid contacts.yaml, runbook and detection.yaml, puts something of the wrong kind
at one key or list item (a list where a string goes, a mapping where a number goes, null, a huge number,
deep nesting, ...) and loads the files the way ``failover runbooks check`` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.domain import runbooks
from failover.domain.detection import config as detection

CONTACTS: dict[str, Any] = {
    "groups": {"oncall": {"description": "On call"}, "leads": {"description": "Leads"}},
    "people": [
        {
            "id": "alice",
            "name": "Alice",
            "phone": "+12025550101",
            "email": "alice@personal.example",
            "groups": ["oncall", "leads"],
        },
        {"id": "bob", "name": "Bob", "phone": "+12025550102", "groups": ["oncall"]},
    ],
}
RUNBOOK: dict[str, Any] = {
    "id": "good",
    "title": "Good",
    "trigger": {"services": ["Exchange Online"], "activation": "auto"},
    "drill_group": "leads",
    "steps": [
        {"channel": "sms", "to": ["group:oncall"], "text": "{{ incident.title }}: reply ACK"},
        {"channel": "email", "to": ["alice"], "subject": "Hi", "text": "Hello"},
        {"channel": "status", "title": "Email down", "text": "Email is down."},
    ],
    "escalation": [{"after": "10m", "if": "unacknowledged", "channel": "sms", "to": ["group:leads"], "text": "up"}],
    "on_resolve": [{"channel": "sms", "to": ["group:oncall"], "text": "all clear"}],
}
DETECTION: dict[str, Any] = {
    "watch": ["Exchange Online", "Microsoft Teams"],
    "graph": {"poll_interval": "60s", "timeout": "15s"},
    "probes": [
        {
            "name": "owa",
            "kind": "http",
            "url": "https://outlook.office365.com/owa/",
            "expect_status": [200, 302],
            "interval": "60s",
            "timeout": "15s",
            "services": ["Exchange Online"],
        },
        {"name": "mx", "kind": "smtp", "host": "mx.example.org", "port": 25, "services": ["Exchange Online"]},
    ],
    "webhook": {"ttl": "6h"},
    "confirm": {
        "graph_statuses": ["serviceDegradation"],
        "probe_quorum": 2,
        "hold": "3m",
        "recover_hold": "10m",
        "max_incidents_per_hour": 3,
        "evaluate_interval": "15s",
    },
}
PROBLEM = re.compile(r"^\S[^:]*:\d+: \S|^\S[^:]*: \S")  # file:line: message (line omitted only when unknown)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list item of ``document``, as a path from the root."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def deep(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([10**100, -(10**100), 2**63, float("inf"), float("nan"), 1e308]),
    st.text(max_size=30),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=3),
    st.lists(st.dictionaries(st.text(min_size=1, max_size=5), st.none(), max_size=2), max_size=2),
    st.integers(min_value=20, max_value=300).map(deep),
)


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = yaml.safe_load(yaml.safe_dump(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_contacts_with_a_wrong_type_anywhere_are_problems(tmp_path_factory: Any, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(CONTACTS)), label="path")
    root = tmp_path_factory.mktemp("contacts")
    write(root / "config" / "contacts.yaml", replaced(CONTACTS, path, data.draw(WRONG, label="value")))
    write(root / "runbooks" / "good.yaml", RUNBOOK)
    catalog, problems = runbooks.check(root / "config", root / "runbooks")
    for problem in problems:
        assert PROBLEM.match(str(problem)), str(problem)
    assert catalog is not None or problems


@FUZZ
@given(data=st.data())
def test_a_runbook_with_a_wrong_type_anywhere_is_problems(tmp_path_factory: Any, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(RUNBOOK)), label="path")
    root = tmp_path_factory.mktemp("runbook")
    write(root / "config" / "contacts.yaml", CONTACTS)
    write(root / "runbooks" / "good.yaml", replaced(RUNBOOK, path, data.draw(WRONG, label="value")))
    catalog, problems = runbooks.check(root / "config", root / "runbooks")
    for problem in problems:
        assert PROBLEM.match(str(problem)), str(problem)
    assert catalog is not None or problems


@FUZZ
@given(data=st.data())
def test_detection_yaml_with_a_wrong_type_anywhere_is_problems(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(DETECTION)), label="path")
    text = yaml.safe_dump(replaced(DETECTION, path, data.draw(WRONG, label="value")), sort_keys=False)
    config, problems = detection.parse(text, "config/detection.yaml")
    for problem in problems:
        assert PROBLEM.match(str(problem)), str(problem)
    assert config is not None or problems


def test_the_base_documents_are_valid(tmp_path: Path) -> None:
    """Without this, every fuzzed case could be 'problems' for a reason that has nothing to do with the fuzz."""
    write(tmp_path / "config" / "contacts.yaml", CONTACTS)
    write(tmp_path / "runbooks" / "good.yaml", RUNBOOK)
    catalog, problems = runbooks.check(tmp_path / "config", tmp_path / "runbooks")
    assert catalog is not None and not problems, problems
    config, problems = detection.parse(yaml.safe_dump(DETECTION, sort_keys=False), "config/detection.yaml")
    assert config is not None and not problems, problems


def test_a_null_duration_is_a_problem_not_a_crash() -> None:
    """What the fuzz found first: ``interval:`` left empty crashed parse_duration with an AttributeError."""
    text = yaml.safe_dump(replaced(DETECTION, ("probes", 0, "interval"), None), sort_keys=False)
    config, problems = detection.parse(text, "config/detection.yaml")
    assert config is None and [str(p) for p in problems if "interval" in str(p) and "duration" in str(p)], problems
