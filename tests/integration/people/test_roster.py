"""The people table as the one roster: contacts.yaml snapshots, removals during an activation, CSV imports, scale."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from failover.db import migrate
from failover.domain import people as domain
from failover.domain.planning import ActivationInfo, IncidentInfo, plan
from failover.engine import people as snapshots
from failover.models import AuditEvent, Delivery
from failover.models_people import PeopleSnapshot, PersonGroup, PersonRow
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import SQLITE_ONLY, make_people, write_config

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def roster_runtime(env: dict[str, str], database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    people = make_people(12)
    config, runbooks = write_config(tmp_path, people)
    for name, value in {
        "FAILOVER_DATABASE_URL": database_url,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(runbooks),
    }.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    yield runtime, config, people
    runtime.close()


def rewrite_contacts(config: Path, people: list[dict[str, object]]) -> None:
    data = yaml.safe_load((config / "contacts.yaml").read_text())
    data["people"] = people
    (config / "contacts.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@SQLITE_ONLY
def test_contacts_yaml_becomes_a_snapshot_with_its_audit_event_once(roster_runtime) -> None:  # type: ignore[no-untyped-def]
    runtime, config, people = roster_runtime
    runtime.config.catalog()
    with runtime.database.reading() as session:
        (snapshot,) = session.scalars(select(PeopleSnapshot)).all()
        assert (snapshot.source, snapshot.status, snapshot.added, snapshot.total) == ("yaml", "applied", 12, 12)
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "people.snapshot")).one()
        assert event.target_id == str(snapshot.id) and event.details["added"] == 12
        assert "phone" not in str(event.details) and "+1" not in str(event.details)  # no contact data audited
    runtime.config._catalog = None  # another process loading the same file: nothing new
    runtime.config.catalog()
    with runtime.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(PeopleSnapshot)) == 1
    changed = [dict(p) for p in people[1:]]
    changed[0]["name"] = "Renamed"
    rewrite_contacts(config, changed)
    runtime.config._catalog = None
    assert runtime.config.catalog().contacts.person("p00000") is not None  # removed, still known by id
    assert [p.id for p in runtime.config.catalog().contacts.members("oncall")][:1] == ["p00001"]
    with runtime.database.reading() as session:
        latest = session.scalars(select(PeopleSnapshot).order_by(PeopleSnapshot.id.desc())).first()
        assert latest is not None and (latest.removed, latest.changed, latest.total) == (1, 1, 11)
        assert latest.detail["sample"]["changed"] == [{"id": "p00001", "fields": ["name"]}]


@SQLITE_ONLY
def test_a_process_that_finds_the_file_in_the_table_reads_only_its_groups_and_ids(roster_runtime) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: a worker must not parse 50,000 people to learn what the table says (memory flat in N)."""
    from failover.domain import contacts as contacts_module
    from failover.domain import runbooks as runbooks_module

    runtime, config, people = roster_runtime
    runtime.config.catalog()  # the first process adopts the file
    text = (config / "contacts.yaml").read_text()
    assert runtime.people.holds_yaml(text) and not runtime.people.holds_yaml(text + "\n# edited\n")
    seen: list[object] = []
    parse = contacts_module.Contacts.model_validate

    def counting(*args: object, **kwargs: object) -> object:
        seen.append(args)
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    second = Runtime(load_settings())  # another process, same files
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(runbooks_module.Contacts, "model_validate", counting)
            catalog = second.config.catalog()
        assert seen == []  # the people were not parsed
        oncall = [p["id"] for p in people if "oncall" in p["groups"]]
        assert [p.id for p in catalog.contacts.members("oncall")] == oncall
        assert set(catalog.contacts.groups) >= {"oncall", "all-staff"}
        with second.database.reading() as session:
            assert session.scalar(select(func.count()).select_from(PeopleSnapshot)) == 1  # nothing synced again
        # person:ID references are still checked, against the ids the file lists.
        book = config.parent / "runbooks" / "named.yaml"
        step = {"channel": "sms", "to": ["person:p00003", "person:nobody"], "text": "hello"}
        runbook = {"id": "named", "title": "Named", "trigger": {"activation": "manual"}, "steps": [step]}
        book.write_text(yaml.safe_dump(runbook))
        second.config._catalog = None
        problems = [p.message for p in second.config.loaded().problems]
        assert any("unknown person 'nobody'" in m for m in problems), problems
        assert not any("p00003" in m for m in problems)
    finally:
        second.close()


def test_a_person_removed_while_an_activation_runs_keeps_their_messages(roster_runtime) -> None:  # type: ignore[no-untyped-def]
    runtime, config, people = roster_runtime
    accepted, _ = runtime.activations.activate(runbook_id="exchange-outage", reason="Exchange down", actor="op")
    rewrite_contacts(config, people[1:])  # p00000 leaves the company mid-incident
    runtime.config._catalog = None
    catalog = runtime.config.catalog()
    assert "p00000" not in {p.id for p in catalog.contacts.members("oncall")}
    with runtime.database.reading() as session:
        rows = session.scalars(
            select(Delivery).where(Delivery.activation_id == accepted.activation_id, Delivery.person_id == "p00000")
        ).all()
    assert rows and all(r.status == "pending" and r.address for r in rows)  # still to be sent, address kept
    found = catalog.contacts.by_phone(str(people[0]["phone"]))  # their ACK still counts
    assert found is not None and found.id == "p00000"
    roster = runtime.people  # and the roster page still names them
    assert roster.status()["people"] == 11


@SQLITE_ONLY
def test_csv_dry_run_shows_the_diff_and_apply_is_all_or_nothing(roster_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime, _, _ = roster_runtime
    runtime.config.catalog()
    good = "id;name;mobile;email;groups;department;office\r\n" + "".join(
        f"h{n};HR Person {n};030 1234567{n};h{n}@personal.example;oncall|all-staff;IT;Berlin\r\n" for n in range(3)
    )
    outcome, parsed = runtime.people.import_csv(good.encode(), "hr.csv", actor="t", dry_run=True, default_region="DE")
    assert not parsed.problems and outcome is not None
    assert outcome.status == "dry_run" and outcome.counts == {"added": 3, "changed": 0, "removed": 0, "unchanged": 12}
    assert [r["id"] for r in outcome.sample["added"]] == ["h0", "h1", "h2"]
    assert runtime.people.status()["people"] == 12  # nothing applied
    outcome, _ = runtime.people.import_csv(good.encode(), "hr.csv", actor="t", default_region="DE")
    assert outcome is not None and outcome.status == "applied"
    person = runtime.config.catalog().contacts.person("h1")
    assert person is not None and person.phone == "+493012345671" and person.groups == ("oncall", "all-staff")
    bad = good + "h9;Bad Phone;12;x@personal.example;;;\r\nh0;Duplicate;;;;;\r\n"
    outcome, parsed = runtime.people.import_csv(bad.encode(), "hr.csv", actor="t", default_region="DE")
    assert outcome is None
    assert [str(p) for p in parsed.problems] == [
        "hr.csv:5: phone '12' is not a valid number (default region DE)",
        "hr.csv:6: duplicate id 'h0' (also on line 2)",
    ]
    assert runtime.people.status()["people"] == 15


@SQLITE_ONLY
def test_the_cli_imports_and_reports_bad_rows_as_file_line(roster_runtime, tmp_path: Path, runner) -> None:  # type: ignore[no-untyped-def]
    from failover.cli import main

    runtime, _, _ = roster_runtime
    runtime.close()
    path = tmp_path / "people.csv"
    path.write_text("id,name,phone\nx1,One,+12025550150\nx2,Two,not a phone\n")
    result = runner.invoke(main, ["people", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: phone 'not a phone' is not a phone number" in result.output
    assert "nothing imported" in result.output
    path.write_text("id,name,phone\nx1,One,+12025550150\n")
    result = runner.invoke(main, ["people", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "added 1, changed 0, removed 0, unchanged 12" in result.output and "dry run" in result.output
    result = runner.invoke(main, ["people", "import", str(path)])
    assert result.exit_code == 0 and "13 people in force" in result.output
    result = runner.invoke(main, ["people", "list", "--group", "oncall"])
    assert "p00000" in result.output and "+12025550150" not in result.output  # numbers masked


@SQLITE_ONLY
def test_runbooks_check_reports_people_yaml_problems_with_file_and_line(roster_runtime, runner) -> None:  # type: ignore[no-untyped-def]
    from failover.cli import main

    runtime, config, _ = roster_runtime
    (config / "people.yaml").write_text(
        "sources:\n  - {kind: graph}\n  - {kind: ldap}\ngroups:\n  berlin:\n    rules: {office: Berlin}\n"
        "safety: {max_removal: 150%}\n"
    )
    result = runner.invoke(main, ["runbooks", "check"])
    assert result.exit_code == 1
    shown = str(config / "people.yaml")
    assert f"{shown}:3: sources.1.kind:" in result.output
    assert f"{shown}:6: groups.berlin.rules.office: unknown key" in result.output
    assert f"{shown}:7: safety.max_removal:" in result.output


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_activation_planned_from_a_50000_person_snapshot(roster_runtime) -> None:  # type: ignore[no-untyped-def]
    """Bulk-inserted straight into the table (the sync path has its benchmark); planning reads it per group."""
    runtime, _, _ = roster_runtime
    t0 = time.perf_counter()
    runtime.config.catalog()
    count = 50_000
    rows = [
        {
            "id": f"bulk{n:05d}",
            "name": f"Bulk {n}",
            "phone": f"+1202555{n % 10000:04d}" if n % 10 else None,
            "email": f"bulk{n:05d}@personal.example",
            "listed_groups": ["all-staff"],
            "sources": "csv",
            "updated_at": NOW,
        }
        for n in range(count)
    ]
    with runtime.database.engine.begin() as connection:  # Core executemany: seconds, not the sync's path
        connection.execute(PersonRow.__table__.insert(), rows)
        connection.execute(
            PersonGroup.__table__.insert(), [{"person_id": r["id"], "group_name": "all-staff"} for r in rows]
        )
    catalog = runtime.config.catalog()
    runbook = catalog.runbook("exchange-outage")
    assert runbook is not None
    started = time.perf_counter()
    planned = plan(
        catalog, runbook, phase="steps", incident=IncidentInfo("Exchange down"), activation=ActivationInfo(None, "op")
    )
    elapsed = time.perf_counter() - started
    emails = [d for d in planned.deliveries if d.channel == "email"]
    assert len(emails) == count + 12  # all-staff: the bulk people and contacts.yaml's
    assert len({d.person_id for d in emails}) == count + 12
    assert sum("all-staff" in d.groups for d in emails) == count + 12  # groups travel with each row
    assert sum(1 for d in planned.deliveries if d.channel == "sms") == 12  # oncall: contacts.yaml's only
    print(f"planned 50,000 on {runtime.database.engine.dialect.name} in {elapsed:.1f}s, setup {started - t0:.1f}s")


def test_domain_refusal_and_merge_tables() -> None:
    a = domain.Record("a", "A", phone="+12025550101", department="IT")
    yaml_override = domain.Record("a", "", phone="+12025550199", groups=("oncall",))
    merged = domain.merge({"graph": a, "yaml": yaml_override})
    assert merged == domain.Record("a", "A", phone="+12025550199", department="IT", groups=("oncall",))
    diff = domain.diff({"a": a, "b": a}, {"a": None, "b": a})
    assert diff.counts() == {"added": 0, "changed": 0, "removed": 1, "unchanged": 1}
    assert domain.refusal(diff, active=10, max_removal=0.1) is None  # 1 of 10: at the limit, allowed
    assert domain.refusal(diff, active=9, max_removal=0.1) is not None
    assert snapshots.ROSTER_LOCK != snapshots.RULES
