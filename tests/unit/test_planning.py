"""Planning: recipients expanded once, texts rendered in the sandbox, drills contained."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.domain import planning, runbooks
from failover.domain.planning import ActivationInfo, IncidentInfo
from failover.domain.templates import TemplateError, Templates
from failover.errors import InvalidRequest
from tests.unit.test_loaders import make_tree

INCIDENT = IncidentInfo(title="Exchange Online outage", services=("Exchange Online",), ms_issue_id="EX123456")


def catalog(tmp_path: Path) -> runbooks.Catalog:
    return runbooks.load(*make_tree(tmp_path))


def info(drill: bool = False) -> ActivationInfo:
    return ActivationInfo(id=7, actor="alice", drill=drill, message="exchange is down")


def test_recipients_are_expanded_and_texts_rendered(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    plan = planning.plan(cat, cat.runbooks["good"], phase="steps", incident=INCIDENT, activation=info())
    sms = [d for d in plan.deliveries if d.channel == "sms"]
    assert [(d.person_id, d.address) for d in sms] == [("alice", "+12025550101"), ("bob", "+12025550102")]
    assert sms[0].body == "Exchange Online outage: reply ACK"
    email = [d for d in plan.deliveries if d.channel == "email"]
    assert [(d.person_id, d.subject, d.body) for d in email] == [("alice", "Hi", "Hello Alice")]
    status = [d for d in plan.deliveries if d.channel == "status"]
    assert [(d.person_id, d.subject, d.body, d.severity) for d in status] == [
        ("status-page", "Email down", "Email is down.", "major")
    ]
    assert plan.count_by_channel() == {"sms": 2, "email": 1, "status": 1}
    assert plan.count_by_group() == {"oncall": 3, "leads": 2}


def test_people_without_an_address_or_opted_out_are_skipped_with_a_reason(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    runbook = cat.runbooks["good"].model_copy(
        update={
            "steps": (
                runbooks.Step(channel="email", to=("group:oncall",), subject="s", text="t"),
                runbooks.Step(channel="sms", to=("group:oncall",), text="t"),
            ),
        }
    )
    plan = planning.plan(cat, runbook, phase="steps", incident=INCIDENT, activation=info(), opted_out={"alice"})
    skipped = {(s.person_id, s.channel, s.reason) for s in plan.skipped}
    assert skipped == {("bob", "email", "no email address"), ("alice", "sms", "opted out of SMS (replied STOP)")}
    assert [(d.person_id, d.channel) for d in plan.deliveries] == [("alice", "email"), ("bob", "sms")]


def test_a_person_named_twice_gets_one_message_per_step(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    runbook = cat.runbooks["good"].model_copy(
        update={
            "steps": (runbooks.Step(channel="sms", to=("group:oncall", "group:leads", "alice"), text="t"),),
        }
    )
    plan = planning.plan(cat, runbook, phase="steps", incident=INCIDENT, activation=info())
    assert [d.person_id for d in plan.deliveries] == ["alice", "bob"]


def test_a_drill_is_prefixed_limited_to_the_drill_group_and_spares_the_status_page(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    plan = planning.plan(cat, cat.runbooks["good"], phase="steps", incident=INCIDENT, activation=info(drill=True))
    assert {d.person_id for d in plan.deliveries} == {"alice"}  # leads = alice only
    assert all(d.body.startswith("[DRILL] ") for d in plan.deliveries)
    assert all(d.subject.startswith("[DRILL] ") for d in plan.deliveries if d.channel == "email")
    assert not [d for d in plan.deliveries if d.channel == "status"]
    assert ("status-page", "drill: public status page left alone") in {(s.person_id, s.reason) for s in plan.skipped}


def test_a_runbook_without_drill_group_cannot_be_drilled(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    runbook = cat.runbooks["good"].model_copy(update={"drill_group": None})
    with pytest.raises(InvalidRequest, match="has no drill_group"):
        planning.plan(cat, runbook, phase="steps", incident=INCIDENT, activation=info(drill=True))


def test_an_override_replaces_every_person_text_but_not_the_status_notice(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    plan = planning.plan(
        cat,
        cat.runbooks["good"],
        phase="steps",
        incident=INCIDENT,
        activation=info(),
        override="  Use the phone bridge.  ",
    )
    bodies = {d.channel: d.body for d in plan.deliveries}
    assert bodies == {"sms": "Use the phone bridge.", "email": "Use the phone bridge.", "status": "Email is down."}


def test_an_sms_longer_than_twilio_accepts_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    with pytest.raises(InvalidRequest, match="SMS text is 1601 characters; Twilio accepts 1600"):
        planning.plan(
            cat, cat.runbooks["good"], phase="steps", incident=INCIDENT, activation=info(), override="x" * 1601
        )


def test_on_resolve_phase(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    plan = planning.plan(cat, cat.runbooks["good"], phase="on_resolve", incident=INCIDENT, activation=info())
    assert [(d.step, d.person_id, d.body) for d in plan.deliveries] == [
        ("on_resolve.0", "alice", "all clear"),
        ("on_resolve.0", "bob", "all clear"),
    ]


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    templates = Templates(tmp_path)
    with pytest.raises(TemplateError, match="cannot render"):
        templates.render({"incident": INCIDENT}, text="{{ incident.__class__.__mro__[1].__subclasses__() }}")


def test_templates_refuse_undefined_attributes(tmp_path: Path) -> None:
    templates = Templates(tmp_path)
    with pytest.raises(TemplateError, match="has no attribute 'nope'"):
        templates.render({"incident": INCIDENT}, text="{{ incident.nope }}")


def test_templates_cannot_escape_their_directory(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "secret.txt").write_text("s3cret")
    templates = Templates(tmp_path / "templates")
    problems = templates.check(name="../secret.txt")
    assert problems and "no template '../secret.txt'" in problems[0].message


def test_templates_render_once_per_distinct_context(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    calls = []
    original = cat.templates.render

    def counting(context, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return original(context, **kwargs)

    cat.templates.render = counting  # type: ignore[method-assign]
    planning.plan(cat, cat.runbooks["good"], phase="steps", incident=INCIDENT, activation=info())
    # sms text shared by alice and bob: once; email uses person: once per person (1); status: once
    assert len(calls) == 3


def test_the_drill_prefix_counts_towards_the_sms_limit(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    with pytest.raises(InvalidRequest, match="SMS text is 1608 characters"):
        planning.plan(
            cat,
            cat.runbooks["good"],
            phase="steps",
            incident=INCIDENT,
            activation=info(drill=True),
            override="x" * 1600,
        )
