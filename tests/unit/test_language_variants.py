"""Template variants per language: sms/outage.de.txt for German speakers, the default for everyone else."""

from __future__ import annotations

from pathlib import Path

from failover.domain.contacts import Contacts, Group, Person
from failover.domain.planning import ActivationInfo, IncidentInfo, plan
from failover.domain.preview import Prices, summarise
from failover.domain.runbooks import Catalog, Runbook
from failover.domain.templates import Templates


def test_each_recipient_gets_their_language_and_the_preview_counts_them(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "outage.txt").write_text("Email is down: {{ incident.title }}")
    (tmp_path / "sms" / "outage.de.txt").write_text("E-Mail ist gestört: {{ incident.title }} – bitte SMS nutzen")
    people = (
        Person(id="anna", name="Anna", phone="+4915112345678", groups=("all",), language="de"),
        Person(id="bob", name="Bob", phone="+12025550102", groups=("all",), language="fr"),  # no French text
        Person(id="carl", name="Carl", phone="+12025550103", groups=("all",)),
    )
    catalog = Catalog(
        Contacts(people=people, groups={"all": Group()}),
        {},
        Templates(tmp_path),
    )
    runbook = Runbook.model_validate(
        {"id": "r", "title": "R", "steps": [{"channel": "sms", "to": ["group:all"], "template": "sms/outage.txt"}]}
    )
    planned = plan(catalog, runbook, phase="steps", incident=IncidentInfo("Outage"), activation=ActivationInfo(1, "op"))
    bodies = {d.person_id: (d.body, d.language) for d in planned.deliveries}
    assert bodies["anna"] == ("E-Mail ist gestört: Outage – bitte SMS nutzen", "de")
    assert bodies["bob"] == ("Email is down: Outage", None) and bodies["carl"] == ("Email is down: Outage", None)
    (step,) = summarise([(runbook, planned)], Prices()).runbooks[0].steps
    assert step.languages == {"de": 1, "default": 2}
    german = next(t for t in step.texts if t.body.startswith("E-Mail"))
    assert german.sms is not None and german.sms.encoding == "UCS-2"  # the dash costs more
