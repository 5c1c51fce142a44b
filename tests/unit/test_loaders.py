"""Contacts and runbook loaders: every problem reported as file:line: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from failover.domain import runbooks
from failover.errors import ConfigProblems

CONTACTS = textwrap.dedent("""\
    groups:
      oncall: {description: On call}
      leads: {description: Leads}
    people:
      - id: alice
        name: Alice
        phone: "+12025550101"
        email: alice@personal.example
        groups: [oncall, leads]
      - id: bob
        name: Bob
        phone: "+12025550102"
        groups: [oncall]
    """)

GOOD_RUNBOOK = textwrap.dedent("""\
    id: good
    title: Good
    trigger: {services: ["Exchange Online"], activation: auto}
    drill_group: leads
    steps:
      - {channel: sms, to: [group:oncall], text: "{{ incident.title }}: reply ACK"}
      - {channel: email, to: [alice], subject: Hi, template: email/hello.txt}
      - {channel: status, title: Email down, text: "Email is down."}
    escalation:
      - {after: 10m, if: unacknowledged, channel: sms, to: [group:leads], text: "escalating"}
    on_resolve:
      - {channel: sms, to: [group:oncall], text: "all clear"}
    """)


def make_tree(
    tmp_path: Path,
    *,
    contacts: str = CONTACTS,
    runbooks_: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    config, books = tmp_path / "config", tmp_path / "runbooks"
    (books / "templates" / "email").mkdir(parents=True)
    config.mkdir()
    (config / "contacts.yaml").write_text(contacts)
    for name, text in {"email/hello.txt": "Hello {{ person.name }}", **(templates or {})}.items():
        path = books / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name, text in (runbooks_ if runbooks_ is not None else {"good.yaml": GOOD_RUNBOOK}).items():
        (books / name).write_text(text)
    return config, books


def problems_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> list[str]:
    config, books = make_tree(tmp_path, **kwargs)  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)
    _, problems = runbooks.check(config, books)
    return [str(p) for p in problems]


def test_the_good_tree_loads(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path)
    catalog = runbooks.load(config, books)
    assert list(catalog.runbooks) == ["good"]
    runbook = catalog.runbooks["good"]
    assert runbook.escalation[0].after.total_seconds() == 600
    assert runbook.escalation[0].if_ == "unacknowledged"
    assert [p.id for p in catalog.contacts.members("oncall")] == ["alice", "bob"]


def test_the_shipped_demo_config_is_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    catalog = runbooks.load(repo / "config", repo / "runbooks")
    assert {"exchange-outage", "teams-outage", "m365-suite-outage"} <= set(catalog.runbooks)


RUNBOOK_CASES = [
    (
        "bad yaml",
        "id: x\n  title: [oops\n",
        "runbooks/x.yaml:2: invalid YAML: mapping values are not allowed in this context",
    ),
    ("unknown key", GOOD_RUNBOOK + "colour: blue\n", "runbooks/x.yaml:13: colour: unknown key"),
    (
        "unknown step key",
        GOOD_RUNBOOK.replace('text: "Email is down."', "text: x, colr: red"),
        "runbooks/x.yaml:8: steps.2.colr: unknown key",
    ),
    (
        "unknown channel",
        GOOD_RUNBOOK.replace(
            'channel: sms, to: [group:oncall], text: "{{', 'channel: pigeon, to: [group:oncall], text: "{{'
        ),
        "runbooks/x.yaml:6: steps.0.channel: unknown channel 'pigeon'; use one of sms, email, status, voice, chat",
    ),
    (
        "unknown group",
        GOOD_RUNBOOK.replace("to: [group:leads]", "to: [group:nobody]"),
        "runbooks/x.yaml:10: escalation.0.to: unknown group 'nobody'",
    ),
    (
        "unknown person",
        GOOD_RUNBOOK.replace("to: [alice]", "to: [mallory]"),
        "runbooks/x.yaml:7: steps.1.to: unknown person 'mallory'",
    ),
    (
        "unknown drill group",
        GOOD_RUNBOOK.replace("drill_group: leads", "drill_group: ghosts"),
        "runbooks/x.yaml:4: drill_group: unknown group 'ghosts'",
    ),
    (
        "template syntax",
        GOOD_RUNBOOK.replace('text: "all clear"', 'text: "{{ oops "'),
        "runbooks/x.yaml:12: on_resolve.0.text: template syntax error: unexpected end of template, "
        "expected 'end of print statement'.",
    ),
    (
        "missing template",
        GOOD_RUNBOOK.replace("email/hello.txt", "email/nope.txt"),
        "runbooks/x.yaml:7: steps.1.template: no template 'email/nope.txt' in runbooks/templates",
    ),
    (
        "bad duration",
        GOOD_RUNBOOK.replace("after: 10m", "after: soon"),
        "runbooks/x.yaml:10: escalation.0.after: 'soon' is not a duration such as 90s, 10m or 1h",
    ),
    ("missing title", GOOD_RUNBOOK.replace("title: Good\n", ""), "runbooks/x.yaml:1: title: required key is missing"),
    (
        "status without title",
        GOOD_RUNBOOK.replace("title: Email down, ", ""),
        "runbooks/x.yaml:8: steps.2: a status step needs a title:",
    ),
    (
        "text and template",
        GOOD_RUNBOOK.replace("template: email/hello.txt", "template: email/hello.txt, text: hi"),
        "runbooks/x.yaml:7: steps.1: give exactly one of template: or text:",
    ),
    ("duplicate key", GOOD_RUNBOOK + "title: Again\n", "runbooks/x.yaml:13: duplicate key 'title'"),
    ("not a mapping", "- just\n- a list\n", "runbooks/x.yaml:1: a runbook must be a mapping of keys"),
]


@pytest.mark.parametrize(("case", "text", "expected"), RUNBOOK_CASES, ids=[c[0] for c in RUNBOOK_CASES])
def test_broken_runbooks_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, text: str, expected: str
) -> None:
    assert expected in problems_of(tmp_path, monkeypatch, runbooks_={"x.yaml": text})


CONTACT_CASES = [
    (
        "bad phone",
        CONTACTS.replace('"+12025550102"', '"555-0102"'),
        "config/contacts.yaml:12: people.1.phone: '555-0102' is not an E.164 number such as +12025550101",
    ),
    (
        "invalid number",
        CONTACTS.replace('"+12025550102"', '"+1202555010"'),
        "config/contacts.yaml:12: people.1.phone: '+1202555010' is not a valid phone number",
    ),
    (
        "bad email",
        CONTACTS.replace("alice@personal.example", "alice-at-home"),
        "config/contacts.yaml:8: people.0.email: value is not a valid email address",
    ),
    (
        "unknown group",
        CONTACTS.replace("groups: [oncall]", "groups: [oncall, night]"),
        "config/contacts.yaml:13: people.1.groups: unknown group 'night'",
    ),
    (
        "duplicate id",
        CONTACTS.replace("id: bob", "id: alice"),
        "config/contacts.yaml:10: people.1.id: duplicate person id 'alice'",
    ),
    (
        "unknown key",
        CONTACTS.replace("name: Bob", "name: Bob\n    pager: 1234"),
        "config/contacts.yaml:12: people.1.pager: unknown key",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), CONTACT_CASES, ids=[c[0] for c in CONTACT_CASES])
def test_broken_contacts_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, text: str, expected: str
) -> None:
    found = problems_of(tmp_path, monkeypatch, contacts=text)
    assert any(problem.startswith(expected) for problem in found), found


def test_duplicate_runbook_ids_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems_of(tmp_path, monkeypatch, runbooks_={"a.yaml": GOOD_RUNBOOK, "b.yaml": GOOD_RUNBOOK})
    assert found == ["runbooks/b.yaml:1: duplicate runbook id 'good' (also in runbooks/a.yaml)"]


def test_unknown_template_names_point_into_the_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems_of(tmp_path, monkeypatch, templates={"email/hello.txt": "Hi\n{{ secret_value }}\n"})
    assert found == [
        "runbooks/templates/email/hello.txt:2: unknown name 'secret_value'; "
        "templates may use activation, incident, person, runbook"
    ]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = GOOD_RUNBOOK.replace("activation: auto", "activation: sometimes").replace("to: [alice]", "to: [ghost]")
    found = problems_of(tmp_path, monkeypatch, runbooks_={"x.yaml": broken})
    assert len(found) == 2
    assert found[0].startswith("runbooks/x.yaml:3: trigger.activation:")
    assert found[1] == "runbooks/x.yaml:7: steps.1.to: unknown person 'ghost'"


def test_load_raises_with_all_problems(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path, runbooks_={"x.yaml": "id: x\n"})
    with pytest.raises(ConfigProblems) as caught:
        runbooks.load(config, books)
    assert "title: required key is missing" in str(caught.value)
    assert "steps: required key is missing" in str(caught.value)


def test_missing_contacts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, books = make_tree(tmp_path)
    (config / "contacts.yaml").unlink()
    monkeypatch.chdir(tmp_path)
    catalog, problems = runbooks.check(config, books)
    assert catalog is None
    assert [str(p) for p in problems] == ["config/contacts.yaml: contacts file not found"]
