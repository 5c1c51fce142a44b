"""The status page's pure rules: states, the page indicator, 90-day bars, status.yaml with file:line errors."""

from __future__ import annotations

import datetime as dt

import pytest

from failover.domain import statuspage as sp

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def at(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], {"A": "operational", "B": "operational"}),
        ([sp.Span({"A": sp.DEGRADED}, at(1), None)], {"A": sp.DEGRADED, "B": "operational"}),
        (
            [sp.Span({"A": sp.DEGRADED}, at(1), None), sp.Span({"A": sp.MAJOR}, at(1), None)],
            {"A": sp.MAJOR, "B": "operational"},
        ),
        ([sp.Span({"A": sp.MAINTENANCE, "B": sp.PARTIAL}, at(1), None)], {"A": sp.MAINTENANCE, "B": sp.PARTIAL}),
        ([sp.Span({"Unknown": sp.MAJOR}, at(1), None)], {"A": "operational", "B": "operational"}),
    ],
)
def test_component_states_are_the_worst_open_state(spans: list[sp.Span], expected: dict[str, str]) -> None:
    assert sp.component_states(["A", "B"], spans) == expected


@pytest.mark.parametrize(
    ("states", "impacts", "indicator"),
    [
        ([sp.OPERATIONAL], [], "none"),
        ([sp.MAINTENANCE], [], "maintenance"),
        ([sp.MAINTENANCE, sp.DEGRADED], [], "minor"),
        ([sp.PARTIAL], [], "major"),
        ([sp.MAJOR, sp.DEGRADED], [], "critical"),
        ([sp.OPERATIONAL], ["minor"], "minor"),  # an incident without components still shows
        ([sp.DEGRADED], ["critical"], "critical"),
    ],
)
def test_the_page_indicator(states: list[str], impacts: list[str], indicator: str) -> None:
    assert sp.indicator(states, impacts) == indicator


def test_uptime_bars_cover_ninety_days_and_weigh_outages() -> None:
    spans = [
        sp.Span({"A": sp.MAJOR}, at(3) - dt.timedelta(hours=12), at(3)),  # 12 hours, all on one day
        sp.Span({"A": sp.PARTIAL}, at(10), at(9)),  # across two days
        sp.Span({"A": sp.MAINTENANCE}, at(20), at(20) + dt.timedelta(hours=2)),
        sp.Span({"B": sp.MAJOR}, at(200), None),  # another component, still open
    ]
    bars = sp.uptime("A", spans, now=NOW)
    assert len(bars.days) == 90 and bars.days[-1].date == NOW.date() and bars.days[0].date == (at(89)).date()
    worst = {d.date: d.state for d in bars.days if d.state != sp.OPERATIONAL}
    assert worst == {
        at(3).date(): sp.MAJOR,
        at(10).date(): sp.PARTIAL,
        at(9).date(): sp.PARTIAL,
        at(20).date(): sp.MAINTENANCE,
    }
    # 12 h of major outage = 0.5 day; 24 h of partial outage at 30 % = 0.3 day; maintenance costs nothing.
    assert bars.percent == round(100 * (1 - 0.8 / 90), 2)
    assert sp.uptime("B", spans, now=NOW).percent < 100 and sp.uptime("C", spans, now=NOW).percent == 100.0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("page: {accent: red}\n", 1, "page.accent"),
        ("components:\n  - {name: A}\n  - {name: a}\n", 3, "component named twice"),
        ("publish:\n  - {kind: ftp, path: /x}\n", 2, "publish.0"),
        ("publish:\n  - {kind: s3}\n", 2, "bucket"),
        ("page: {logo_url: 'javascript:alert(1)'}\n", 1, "logo_url must be an https"),
        ("- a list\n", 1, "must be a mapping"),
    ],
)
def test_status_yaml_problems_name_file_and_line(text: str, line: int, message: str) -> None:
    config, problems = sp.parse(text, "config/status.yaml")
    assert config is None and problems
    assert problems[0].file == "config/status.yaml" and problems[0].line == line and message in problems[0].message


def test_components_default_to_the_watch_list_and_slugs_are_paths() -> None:
    page = sp.page_from(sp.StatusConfig(), ["Exchange Online", "Microsoft 365 suite", "Exchange Online"])
    assert page.names == ["Exchange Online", "Microsoft 365 suite"]
    assert [c.id for c in page.components] == ["exchange-online", "microsoft-365-suite"]
    assert sp.slug("../../etc/passwd") == "etc-passwd" and sp.slug("!!!") == "component"


@pytest.mark.parametrize(
    ("kind", "progress", "ok"),
    [
        ("incident", "identified", True),
        ("incident", "scheduled", False),
        ("maintenance", "verifying", True),
        ("maintenance", "monitoring", False),
    ],
)
def test_progress_belongs_to_its_kind(kind: str, progress: str, ok: bool) -> None:
    if ok:
        assert sp.valid_progress(kind, progress) == progress
    else:
        with pytest.raises(ValueError, match="status must be one of"):
            sp.valid_progress(kind, progress)
