"""SMS segments and encodings, and the preview an operator confirms (pure, tables of cases)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from failover.domain import planning, runbooks
from failover.domain.planning import ActivationInfo, IncidentInfo
from failover.domain.preview import NAMED, Prices, summarise
from failover.domain.sms import analyse

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # the escape pair moves whole to segment 2
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # ... so 306 septets need three segments here
        ("naïve café", "UCS-2", 10, 1),  # é is GSM-7 but ï is not: the whole text goes UCS-2
        ("é" * 161, "GSM-7", 161, 2),  # é is in the GSM-7 basic table
        ("ê" * 70, "UCS-2", 70, 1),
        ("ê" * 71, "UCS-2", 71, 2),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # a surrogate pair is two code units
        ("a" * 66 + "😀" + "a" * 10, "UCS-2", 78, 2),  # ... never split across segments
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
    ],
)
def test_segments_and_encoding(text: str, encoding: str, units: int, segments: int) -> None:
    info = analyse(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_the_characters_that_force_ucs2_are_named_once_in_order() -> None:
    assert analyse("It’s down — “really”’").non_gsm == ("’", "—", "“", "”")
    assert analyse("plain [text] ~ {ok}").non_gsm == ()


@pytest.fixture(scope="module")
def catalog() -> runbooks.Catalog:
    return runbooks.load(REPO / "config", REPO / "runbooks")


def plan_of(catalog: runbooks.Catalog, runbook_id: str, *, drill: bool = False, override: str | None = None):  # type: ignore[no-untyped-def]
    runbook = catalog.runbooks[runbook_id]
    plan = planning.plan(
        catalog,
        runbook,
        phase="steps",
        incident=IncidentInfo(title="Email outage", services=("Exchange Online",)),
        activation=ActivationInfo(id=None, actor="alice", drill=drill),
        override=override,
    )
    return runbook, plan


def test_the_preview_counts_per_channel_and_addressed_group(catalog: runbooks.Catalog) -> None:
    preview = summarise([plan_of(catalog, "exchange-outage")], Prices())
    assert preview.counts == {"sms": 3, "email": 7, "status": 1}
    assert preview.groups == {"sms": {"oncall": 3}, "email": {"all-staff": 7}, "status": {}}
    assert [(s.person_id, s.channel, s.reason) for s in preview.skipped] == [("erin", "email", "no email address")]
    (section,) = preview.runbooks
    assert not section.needs_approval and [s.step for s in section.steps] == ["steps.0", "steps.1", "steps.2"]
    sms = section.steps[0]
    assert sms.channel == "sms" and len(sms.texts) == 1 and sms.texts[0].recipients == 3
    assert sms.texts[0].sms is not None and sms.texts[0].sms.encoding == "GSM-7"


def test_a_person_addressed_by_id_is_counted_as_named(catalog: runbooks.Catalog) -> None:
    runbook = catalog.runbooks["teams-outage"].model_copy(
        update={"steps": (runbooks.Step(channel="sms", to=("person:alice", "group:service-desk"), text="hi"),)}
    )
    plan = planning.plan(
        catalog,
        runbook,
        phase="steps",
        incident=IncidentInfo(title="t"),
        activation=ActivationInfo(id=None, actor="a"),
    )
    assert summarise([(runbook, plan)], Prices()).groups == {"sms": {NAMED: 1, "service-desk": 2}}


def test_the_cost_uses_segments_and_emails_and_says_when_prices_are_missing(catalog: runbooks.Catalog) -> None:
    long_text = "ê" * 100  # UCS-2, two segments
    item = plan_of(catalog, "exchange-outage", override=long_text)
    priced = summarise([item], Prices(sms_segment=Decimal("0.0079"), email=Decimal("0.001"), currency="EUR"))
    assert (priced.cost.sms_segments, priced.cost.emails) == (6, 7)
    assert priced.cost.sms == Decimal("0.0474") and priced.cost.email == Decimal("0.0070")
    assert priced.cost.total == Decimal("0.0544") and priced.cost.currency == "EUR"
    assert summarise([item], Prices()).cost.total is None
    only_sms = summarise([item], Prices(sms_segment=Decimal("0.01")))
    assert only_sms.cost.total is None  # emails are sent too, and their price is unknown


def test_several_runbooks_and_approval_are_shown_together(catalog: runbooks.Catalog) -> None:
    preview = summarise([plan_of(catalog, "exchange-outage"), plan_of(catalog, "m365-suite-outage")], Prices())
    assert [r.runbook_id for r in preview.runbooks] == ["exchange-outage", "m365-suite-outage"]
    assert preview.needs_approval == ("m365-suite-outage",)
    assert preview.counts["sms"] == 3 + 7 and preview.counts["status"] == 2


def test_the_fingerprint_follows_recipients_and_texts(catalog: runbooks.Catalog) -> None:
    first = summarise([plan_of(catalog, "exchange-outage")], Prices()).fingerprint
    assert summarise([plan_of(catalog, "exchange-outage")], Prices()).fingerprint == first
    assert summarise([plan_of(catalog, "exchange-outage", override="other")], Prices()).fingerprint != first
    assert summarise([plan_of(catalog, "exchange-outage", drill=True)], Prices()).fingerprint != first
