"""config/detection.yaml: the shipped file loads, and every mistake is reported as file:line: message."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from failover.domain.detection import config as detection
from failover.errors import ConfigProblems

REPO = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent("""\
    watch: ["Exchange Online", "Microsoft Teams"]
    graph: {poll_interval: 30s}
    probes:
      - {kind: smtp, host: contoso-com.mail.protection.outlook.com, port: 25,
         interval: 60s, services: ["Exchange Online"]}
      - {kind: http, url: "https://outlook.office365.com/owa/", expect_status: [200, 302, 401],
         interval: 60s, services: ["exchange online"]}
    confirm:
      graph_statuses: [serviceDegradation, serviceInterruption]
      graph_classifications: [incident]
      probe_quorum: 2
      hold: 3m
      recover_hold: 10m
    """)


def problems_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "detection.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    _, problems = detection.check(Path("config"))
    return [str(p) for p in problems]


def test_the_shipped_detection_file_is_valid() -> None:
    config = detection.load(REPO / "config")
    assert {"Exchange Online", "Microsoft Teams", "Microsoft 365 suite"} <= set(config.watch)
    assert config.confirm.probe_quorum >= 2 and config.confirm.recover_hold >= config.confirm.hold
    assert all(p.services for p in config.probes)


def test_a_good_file_loads_with_durations_and_derived_probe_names(tmp_path: Path) -> None:
    (tmp_path / "detection.yaml").write_text(GOOD)
    config = detection.load(tmp_path)
    assert config.graph.poll_interval == dt.timedelta(seconds=30)
    assert [p.key for p in config.probes] == [
        "smtp:contoso-com.mail.protection.outlook.com:25",
        "http:https://outlook.office365.com/owa/",
    ]
    assert config.service("EXCHANGE ONLINE") == "Exchange Online"
    assert config.confirm.confirms(status="ServiceInterruption", classification="Incident")
    assert not config.confirm.confirms(status="serviceInterruption", classification="advisory")


def test_no_file_means_nothing_is_watched(tmp_path: Path) -> None:
    config = detection.load(tmp_path)
    assert config.watch == () and config.probes == ()


CASES = [
    ("bad yaml", GOOD.replace("watch: [", "watch: [[", 1), "config/detection.yaml:2: invalid YAML"),
    ("unknown key", GOOD + "colour: blue\n", "config/detection.yaml:14: colour: unknown key"),
    (
        "bad duration",
        GOOD.replace("hold: 3m", "hold: a while"),
        "config/detection.yaml:12: confirm.hold: 'a while' is not a duration such as 90s, 10m or 1h",
    ),
    (
        "unknown probe kind",
        GOOD.replace("kind: smtp", "kind: ping"),
        "config/detection.yaml:4: probes.0.kind: Input should be 'smtp' or 'http'",
    ),
    (
        "smtp probe without host",
        GOOD.replace("host: contoso-com.mail.protection.outlook.com, ", ""),
        "config/detection.yaml:4: probes.0: an smtp probe needs host:",
    ),
    (
        "http probe with a bad url",
        GOOD.replace('url: "https://outlook.office365.com/owa/"', "url: outlook.office365.com"),
        "config/detection.yaml:6: probes.1: an http probe needs url: starting with http:// or https://",
    ),
    (
        "probe for a service that is not watched",
        GOOD.replace('services: ["Exchange Online"]}', 'services: ["Yammer"]}'),
        "config/detection.yaml:5: probes.0.services: 'Yammer' is not in watch: (add it there)",
    ),
    (
        "service listed twice",
        GOOD.replace('"Microsoft Teams"]', '"exchange online"]'),
        "config/detection.yaml:1: watch.1: 'exchange online' is listed twice",
    ),
    (
        "quorum of zero",
        GOOD.replace("probe_quorum: 2", "probe_quorum: 0"),
        "config/detection.yaml:11: confirm.probe_quorum: Input should be greater than or equal to 1",
    ),
    (
        "poll interval too short",
        GOOD.replace("poll_interval: 30s", "poll_interval: 200ms"),
        "config/detection.yaml:2: graph.poll_interval: poll_interval must be at least 1s",
    ),
    (
        "rcpt without mail from",
        GOOD.replace("port: 25,", "port: 25, rcpt_to: postmaster@contoso.com,"),
        "config/detection.yaml:4: probes.0: rcpt_to: needs mail_from:",
    ),
    ("not a mapping", "- just\n- a list\n", "config/detection.yaml:1: detection.yaml must be a mapping"),
]


@pytest.mark.parametrize(("case", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_mistakes_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, text: str, expected: str
) -> None:
    found = problems_of(tmp_path, monkeypatch, text)
    assert any(problem.startswith(expected) for problem in found), found


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    (tmp_path / "detection.yaml").write_text(GOOD.replace("hold: 3m", "hold: x").replace("kind: smtp", "kind: ping"))
    with pytest.raises(ConfigProblems) as caught:
        detection.load(tmp_path)
    assert len(caught.value.problems) == 2
