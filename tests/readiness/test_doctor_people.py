"""Doctor on people from Entra ID (issue 13): the snapshot's freshness against people.yaml's stale_after,
and User.Read.All required exactly when people.yaml has a graph source."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from failover.domain.readiness import Finding, Result
from failover.engine import doctor
from failover.models_people import PeopleSource
from failover.runtime import Runtime
from failover.settings import Settings

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
GRAPH_PEOPLE = "sources:\n  - {kind: graph, interval: 6h}\n  - {kind: yaml}\nsafety: {stale_after: 48h}\n"


def config_with(settings: Settings, tmp_path: Path, people_yaml: str | None) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    (config / "people.yaml").unlink(missing_ok=True)
    if people_yaml is not None:
        (config / "people.yaml").write_text(people_yaml)
    return settings.model_copy(update={"config_dir": config})


def people_finding(runtime: Runtime, settings: Settings) -> Finding:
    report = doctor.run(settings, runtime.database, None, now=NOW, only=("service.people",))
    return {f.check: f for f in report.findings}["service.people"]


def record(runtime: Runtime, *, last_ok: dt.datetime | None, error: str | None = None) -> None:
    with runtime.database.transaction() as session:
        session.merge(PeopleSource(source="graph", last_ok_at=last_ok, last_attempt_at=NOW, last_error=error))


def test_no_graph_source_is_skipped(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    finding = people_finding(runtime, config_with(settings, tmp_path, None))
    assert finding.result == Result.SKIPPED and "no directory sync" in finding.detail


def test_never_synced_fails(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    finding = people_finding(runtime, config_with(settings, tmp_path, GRAPH_PEOPLE))
    assert finding.result == Result.FAIL and "never synced" in finding.detail


@pytest.mark.parametrize(
    ("age", "error", "expected"),
    [
        (dt.timedelta(hours=5), None, Result.OK),
        (dt.timedelta(hours=5), "Graph answered 403", Result.WARN),
        (dt.timedelta(hours=49), None, Result.FAIL),
        (dt.timedelta(hours=49), "Graph answered 403", Result.FAIL),
    ],
)
def test_snapshot_age_against_stale_after(
    runtime: Runtime, settings: Settings, tmp_path: Path, age: dt.timedelta, error: str | None, expected: Result
) -> None:
    record(runtime, last_ok=NOW - age, error=error)
    finding = people_finding(runtime, config_with(settings, tmp_path, GRAPH_PEOPLE))
    assert finding.result == expected
    if error:
        assert "403" in finding.detail
    if expected == Result.FAIL:
        assert "stale_after" in finding.detail


def test_user_read_all_needed_exactly_with_a_graph_source(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover.sources import graph_readiness

    seen: list[bool] = []
    monkeypatch.setattr(graph_readiness, "check", lambda client, **kw: seen.append(kw["need_users"]) or [])
    ctx = doctor.Context(config_with(settings, tmp_path / "a", GRAPH_PEOPLE), None, None, NOW, None)  # type: ignore[arg-type]
    doctor.graph(ctx)
    ctx = doctor.Context(config_with(settings, tmp_path / "b", None), None, None, NOW, None)  # type: ignore[arg-type]
    doctor.graph(ctx)
    assert seen == [True, False]
