"""People from Microsoft Graph: /users/delta over TLS with msal tokens, and a roster that survives Graph failing."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import func, select

from failover.domain.planning import ActivationInfo, IncidentInfo, plan
from failover.models import AuditEvent
from failover.models_people import PeopleSnapshot, PeopleSource, PersonRow
from failover.runtime import Runtime
from tests.conftest import SQLITE_ONLY
from tests.fakes.graph_users import FakeGraphUsers, user

pytestmark = pytest.mark.integration

Setup = tuple[Runtime, FakeGraphUsers, list[float]]


def active_ids(runtime: Runtime) -> set[str]:
    with runtime.database.reading() as session:
        return set(session.scalars(select(PersonRow.id).where(PersonRow.removed_at.is_(None))))


def berlin_recipients(runtime: Runtime) -> set[str]:
    catalog = runtime.config.catalog()
    runbook = catalog.runbook("berlin-alert")
    assert runbook is not None
    planned = plan(
        catalog,
        runbook,
        phase="steps",
        incident=IncidentInfo("Email down"),
        activation=ActivationInfo(None, "test"),
    )
    return {d.person_id for d in planned.deliveries}


def test_full_sync_pages_selects_and_keeps_the_delta_link_then_fetches_only_changes(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(*(user(n) for n in range(1, 121)))  # three pages of 50
    graph.add(user(200, accountEnabled=False))
    outcome = runtime.people.sync_graph(actor="test")
    assert outcome.status == "applied" and outcome.counts["added"] == 120
    first = graph.delta_calls()
    assert len(first) == 3  # every page, by its nextLink
    select_ = first[0].query["$select"][0].split(",")
    assert {"id", "displayName", "mobilePhone", "businessPhones", "department", "officeLocation", "jobTitle"} <= set(
        select_
    )
    assert {"accountEnabled", "usageLocation", "mail"} <= set(select_)
    ids = active_ids(runtime)
    assert "user00001@contoso.example" in ids and "user00200@contoso.example" not in ids  # disabled: left out
    assert "ops" in ids  # contacts.yaml's people are in the same roster
    with runtime.database.reading() as session:
        row = session.get(PersonRow, "user00003@contoso.example")
        assert row is not None and row.phone == "+12025551003" and row.office_location == "Berlin HQ"
        assert row.language == "de"
        state = session.get(PeopleSource, "graph")
        assert state is not None and state.delta_link and "$deltatoken=" in state.delta_link

    graph.change(user(5)["id"], officeLocation="Berlin Mitte")  # only the changed property comes back
    graph.change(user(7)["id"], accountEnabled=False)  # disabled: removed
    graph.delete(user(8)["id"])
    graph.add(user(300))
    graph.reset()
    outcome = runtime.people.sync_graph(actor="test")
    calls = graph.delta_calls()
    assert len(calls) == 1 and "$deltatoken" in calls[0].query
    assert outcome.counts["added"] == 1 and outcome.counts["changed"] == 1 and outcome.counts["removed"] == 2
    with runtime.database.reading() as session:
        moved = session.get(PersonRow, "user00005@contoso.example")
        assert moved is not None and moved.office_location == "Berlin Mitte" and moved.name == "User 5"
        assert moved.phone == "+12025551005"  # kept from the full view: the delta did not repeat it
    ids = active_ids(runtime)
    assert "user00007@contoso.example" not in ids and "user00008@contoso.example" not in ids
    assert "user00300@contoso.example" in ids


@SQLITE_ONLY
def test_a_rejected_delta_link_starts_a_full_sync(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(*(user(n) for n in range(1, 11)))
    runtime.people.sync_graph(actor="test")
    graph.add(user(11))
    graph.expire_tokens()
    graph.reset()
    outcome = runtime.people.sync_graph(actor="test")
    assert outcome.status == "applied" and outcome.counts["added"] == 1
    queries = [c.query for c in graph.delta_calls()]
    assert "$deltatoken" in queries[0] and "$select" in queries[1]  # 410, then from scratch


@SQLITE_ONLY
def test_429_is_retried_after_the_time_graph_asks(graph_runtime: Setup) -> None:
    runtime, graph, waits = graph_runtime
    graph.add(*(user(n) for n in range(1, 11)))
    graph.throttle_next(times=2, retry_after=3)
    outcome = runtime.people.sync_graph(actor="test")
    assert outcome.status == "applied" and outcome.counts["added"] == 10
    assert waits == [3.0, 3.0]


@pytest.mark.parametrize("failure", ["503", "timeout", "token"])
@SQLITE_ONLY
def test_a_failed_sync_keeps_the_last_good_roster_and_says_so(graph_runtime: Setup, failure: str) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(*(user(n) for n in range(1, 21)))
    assert runtime.people.sync_graph(actor="test").status == "applied"
    before = active_ids(runtime)
    graph.delete(user(1)["id"])
    if failure == "503":
        graph.throttle_next(times=10, retry_after=1, status=503)
    elif failure == "timeout":
        graph.hang = True
    else:
        graph.entra.down = True
        client = runtime.detection.graph()
        assert client is not None
        client._app = None  # a fresh token is needed (msal would serve the cached one)
    outcome = runtime.people.sync_graph(actor="test")
    graph.hang = False
    assert outcome.status == "failed" and outcome.reason
    assert active_ids(runtime) == before
    with runtime.database.reading() as session:
        state = session.get(PeopleSource, "graph")
        assert state is not None and state.last_error and state.delta_link  # the link is kept for next time
        failed = session.scalars(select(PeopleSnapshot).where(PeopleSnapshot.status == "failed")).one()
        assert failed.error == outcome.reason
        assert session.scalar(select(func.count()).where(AuditEvent.action == "people.sync_failed")) == 1
    status = runtime.people.status()
    assert status["people"] == len(before) and status["sources"][0]["last_error"]


@SQLITE_ONLY
def test_removing_more_than_max_removal_is_refused_until_an_admin_accepts(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(*(user(n) for n in range(1, 31)))
    runtime.people.sync_graph(actor="test")
    for n in range(1, 6):  # 5 of 31 people (30 + ops): 16 % > 10 %
        graph.delete(user(n)["id"])
    outcome = runtime.people.sync_graph(actor="test")
    assert outcome.status == "refused" and "max_removal" in (outcome.reason or "")
    assert "user00001@contoso.example" in active_ids(runtime)
    with runtime.database.reading() as session:
        state = session.get(PeopleSource, "graph")
        assert state is not None and (state.last_error or "").startswith("refused")
        assert session.scalar(select(func.count()).where(AuditEvent.action == "people.sync_refused")) == 1
    graph.reset()
    outcome = runtime.people.sync_graph(actor="admin", accept=True)
    assert outcome.status == "applied" and outcome.counts["removed"] == 5
    assert "$deltatoken" in graph.delta_calls()[0].query  # the refused delta was not consumed
    assert "user00001@contoso.example" not in active_ids(runtime)


def test_a_runbook_for_a_rule_group_reaches_graph_people_and_still_does_when_graph_fails(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(*(user(n) for n in range(1, 31)))
    runtime.people.sync_graph(actor="test")
    berlin = {f"user{n:05d}@contoso.example" for n in range(3, 31, 3)}  # officeLocation "Berlin HQ"
    assert berlin_recipients(runtime) == berlin
    catalog = runtime.config.catalog()
    assert {p.id for p in catalog.contacts.members("it")} == {
        f"user{n:05d}@contoso.example" for n in (5, 10, 15, 20, 25, 30)
    }
    assert [p.id for p in catalog.contacts.members("named")] == ["user00001@contoso.example"]

    graph.hang = True  # Microsoft is down now
    assert runtime.people.sync_graph(actor="beat").status == "failed"
    graph.hang = False
    accepted, _ = runtime.activations.activate(runbook_id="berlin-alert", actor="operator", reason="Exchange down")
    with runtime.database.reading() as session:
        from failover.models import Delivery

        sent_to = set(
            session.scalars(select(Delivery.person_id).where(Delivery.activation_id == accepted.activation_id))
        )
    assert sent_to == berlin


@SQLITE_ONLY
def test_the_roster_is_stale_after_stale_after_without_a_good_sync(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    graph.add(user(1))
    with freeze_time("2026-03-02 08:00:00"):
        runtime.people.sync_graph(actor="test")
        assert runtime.people.status()["stale"] is False
    with freeze_time("2026-03-04 09:00:00"):  # 49 h later
        status = runtime.people.status(now=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC))
        assert status["stale"] is True and status["as_of"].startswith("2026-03-02T08:00")


@SQLITE_ONLY
def test_a_sync_that_would_empty_a_required_group_is_refused(graph_runtime: Setup) -> None:
    runtime, graph, _ = graph_runtime
    config = runtime.settings.config_dir / "people.yaml"
    data = yaml.safe_load(config.read_text())
    data["groups"]["named"]["required"] = True
    config.write_text(yaml.safe_dump(data))
    assert runtime.people.config().groups["named"].required
    graph.add(*(user(n) for n in range(1, 31)))
    runtime.people.sync_graph(actor="test")
    graph.delete(user(1)["id"])  # 1 of 31: well within max_removal, but the only member of "named"
    outcome = runtime.people.sync_graph(actor="test")
    assert outcome.status == "refused" and outcome.reason == "it would leave the required group 'named' empty"
    assert [p.id for p in runtime.config.catalog().contacts.members("named")] == ["user00001@contoso.example"]


@SQLITE_ONLY
def test_beat_syncs_every_interval_and_the_task_keeps_the_roster_on_failure(graph_runtime: Setup) -> None:
    from failover.celery_app import create_celery

    runtime, graph, _ = graph_runtime
    entry = create_celery(runtime).conf.beat_schedule["people-sync"]
    assert entry["task"] == "failover.tasks.sync_people" and entry["schedule"] == 6 * 3600
    graph.add(user(1))
    assert runtime.people.sync_task()["status"] == "applied"
    graph.hang = True
    result = runtime.people.sync_task()
    graph.hang = False
    assert result["status"] == "failed" and "timed out" in result["reason"]
    assert "user00001@contoso.example" in active_ids(runtime)
