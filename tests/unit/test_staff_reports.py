"""Staff outage reports in the pure policy: parsing, counting, and the source's fail/clear transitions."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from freezegun import freeze_time

from failover.clock import utcnow
from failover.domain import staff_reports
from failover.domain.detection import config as detection
from failover.domain.detection.config import ConfirmPolicy
from failover.domain.detection.policy import Evidence, Phase, ServiceState, step
from failover.domain.detection.signals import Reading, Vote, cast
from failover.domain.report_policy import ReportsPolicy
from failover.domain.staff_reports import Report, parse, tally

EXO, TEAMS, SUITE = "Exchange Online", "Microsoft Teams", "Microsoft 365 suite"
POLICY = ReportsPolicy(
    suite=SUITE,
    aliases={EXO: ("MAIL", "EMAIL", "OUTLOOK"), TEAMS: ("TEAMS",)},
    window=dt.timedelta(minutes=10),
    min_reporters=5,
)
START = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)
CONFIRM = ConfirmPolicy(probe_quorum=2, hold=dt.timedelta(minutes=1), recover_hold=dt.timedelta(minutes=5))


@pytest.mark.parametrize(
    ("body", "services"),
    [
        ("DOWN MAIL", (EXO,)),
        ("down mail", (EXO,)),
        ("Down, mail since 9am!!", (EXO,)),
        ("  dOwN   outlook  ", (EXO,)),
        ("DOWN TEAMS", (TEAMS,)),
        ("DOWN", (SUITE,)),
        ("down - cannot log in to anything", (SUITE,)),
        ("DOWN MAIL and TEAMS", (EXO, TEAMS)),
        ("ＤＯＷＮ ＭＡＩＬ", (EXO,)),  # full-width letters from a phone keyboard
    ],
)
def test_report_keywords_in_any_case_with_extra_words(body: str, services: tuple[str, ...]) -> None:
    parsed = parse(body, POLICY)
    assert parsed is not None and parsed.services == services


@pytest.mark.parametrize("body", ["", "ACK", "the printer is down", "mail down", "DOWNTIME tonight", None])
def test_texts_that_are_not_reports(body: str | None) -> None:
    assert parse(body, POLICY) is None


def test_a_bare_keyword_without_a_suite_names_nothing() -> None:
    parsed = parse("DOWN", ReportsPolicy(aliases={EXO: ("MAIL",)}))
    assert parsed is not None and parsed.services == ()


def at(minutes: float) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


def test_distinct_reporters_count_not_reports() -> None:
    flood = [Report(at(i / 10), EXO, "alice") for i in range(40)]  # one person, forty texts
    assert tally(flood, EXO, at(5), POLICY).reporters == 1
    four = flood + [Report(at(1), EXO, who) for who in ("bob", "carol", "dan")]
    assert tally(four, EXO, at(5), POLICY) == staff_reports.Tally(EXO, 4, False, None)
    five = four + [Report(at(2), EXO, "erin")]
    result = tally(five, EXO, at(5), POLICY)
    # Fails now; expires when the 5th newest reporter's latest report (bob/carol/dan at 9:06) leaves the window.
    assert (result.reporters, result.failing, result.expires_at) == (5, True, at(11))
    assert not tally(five, TEAMS, at(5), POLICY).failing  # reports about mail say nothing about Teams
    assert tally(five, EXO, at(11), POLICY).reporters == 2  # alice (9:08.9) and erin (9:07) remain


def test_per_number_cap_and_one_reply_per_window() -> None:
    mine = [Report(at(i), EXO, "alice") for i in range(3)]
    assert staff_reports.capped(mine, "alice", at(3), POLICY, POLICY.per_number)
    assert not staff_reports.capped(mine, "bob", at(3), POLICY, POLICY.per_number)
    assert not staff_reports.capped(mine, "alice", at(10.5), POLICY, POLICY.per_number)  # the first aged out
    assert not staff_reports.first_in_window(mine, "alice", at(9), POLICY)
    assert staff_reports.first_in_window(mine, "alice", at(12.5), POLICY)


class Feed:
    """Reports and a probe become votes the way the engine casts them; the pure detector decides."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.votes: dict[str, Vote] = {}
        self.state = ServiceState(EXO)

    def report(self, who: str) -> None:
        self.reports.append(Report(utcnow(), EXO, who))
        self.read(staff_reports.reading(tally(self.reports, EXO, utcnow(), POLICY), POLICY))

    def read(self, reading: Reading) -> None:
        self.votes[reading.voter] = cast(self.votes.get(reading.voter), reading, utcnow())

    def probe(self, failing: bool) -> None:
        lasts = utcnow() + dt.timedelta(minutes=3)
        self.read(Reading("probe:mx", "probe:mx", EXO, failing, "451 4.3.2", expires_at=lasts))

    def step(self) -> Phase:
        evidence = {EXO: Evidence(votes=tuple(self.votes.values()))}
        outcome = step(now=utcnow(), policy=CONFIRM, states={EXO: self.state}, evidence=evidence, incidents={})
        self.state = outcome.states[EXO]
        return self.state.phase


def test_five_reporters_are_one_failing_source_and_it_clears_when_the_window_empties() -> None:
    feed = Feed()
    with freeze_time(START) as clock:
        for who in ("alice", "bob", "carol", "dan"):
            feed.report(who)
            feed.report(who)  # twice each: still four reporters
        feed.probe(failing=True)
        assert feed.step() == Phase.SUSPECTED  # one source failing: not a quorum
        assert not feed.votes["reports"].failing
        clock.tick(dt.timedelta(seconds=30))
        feed.report("erin")
        assert feed.votes["reports"].failing  # the fifth distinct reporter
        assert feed.step() == Phase.SUSPECTED  # two sources, but the reports source is not held yet
        clock.tick(dt.timedelta(seconds=59))
        feed.probe(failing=True)
        assert feed.step() == Phase.SUSPECTED
        clock.tick(dt.timedelta(seconds=1))
        feed.probe(failing=True)
        assert feed.step() == Phase.CONFIRMED  # reports + probe held for `hold`: quorum
        assert "reports" in feed.state.reason and "probe:mx" in feed.state.reason

        # The first four reports leave the window at 9:15: the vote expires without any new reading.
        clock.move_to(START + dt.timedelta(minutes=10) - dt.timedelta(seconds=1))
        feed.probe(failing=True)
        assert feed.votes["reports"].live(utcnow())
        assert feed.step() == Phase.CONFIRMED
        clock.tick(dt.timedelta(seconds=1))
        assert not feed.votes["reports"].live(utcnow())
        feed.probe(failing=True)
        assert feed.step() == Phase.RECOVERING  # only the probe is left: below quorum
        clock.tick(CONFIRM.recover_hold)
        feed.probe(failing=True)
        assert feed.step() == Phase.RESOLVED


def test_reports_alone_never_confirm_with_a_quorum_of_two() -> None:
    feed = Feed()
    with freeze_time(START) as clock:
        for who in ("alice", "bob", "carol", "dan", "erin", "frank"):
            feed.report(who)
        clock.tick(dt.timedelta(minutes=5))
        assert feed.step() == Phase.SUSPECTED


def _config(reports: dict[str, object]) -> tuple[object, list[str]]:
    text = yaml.safe_dump({"watch": [EXO, TEAMS], "reports": reports}, sort_keys=False)
    config, problems = detection.parse(text, "config/detection.yaml")
    return config, [str(p) for p in problems]


def test_reports_section_validates_with_file_and_line() -> None:
    config, problems = _config({"aliases": {EXO: ["mail"], TEAMS: ["teams"]}, "window": "15m", "min_reporters": 3})
    assert problems == []
    assert config is not None and config.reports.aliases[EXO] == ("MAIL",)  # type: ignore[attr-defined]

    _, problems = _config({"suite": "Microsoft 365 suite", "aliases": {"Yammer": ["YAM"]}})
    assert any("reports.suite: 'Microsoft 365 suite' is not in watch" in p for p in problems)
    assert any(p.startswith("config/detection.yaml:") and "'Yammer' is not in watch" in p for p in problems)

    _, problems = _config({"aliases": {EXO: ["MAIL"], TEAMS: ["MAIL"]}})
    assert any("'MAIL' names both" in p for p in problems)

    _, problems = _config({"min_reporters": 0, "window": "10s", "keywords": ["two words"]})
    joined = "\n".join(problems)
    assert "reports.min_reporters" in joined and "reports.window: window must be at least 1m" in joined
    assert "keyword 'TWO WORDS' must be one word" in joined
    assert all(p.startswith("config/detection.yaml:") and p.split(":")[1].isdigit() for p in problems)
