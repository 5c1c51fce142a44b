"""The watcher from the command line: `runbooks check` covers detection.yaml, `watch status`, `watch confirm`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from failover.cli import main
from tests.conftest import REPO


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(main, list(args))
    assert result.exit_code == code, result.output + (str(result.exception) if result.exception else "")
    return result.output


def test_runbooks_check_reports_the_detection_policy(cli: CliRunner) -> None:
    out = run(cli, "runbooks", "check")
    assert "ok: 3 runbook(s), 8 contact(s), 4 group(s)" in out
    assert "detection ok: watching 3 service(s) with 0 probe(s); quorum 2" in out


def test_runbooks_check_names_detection_file_and_line(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    text = (config / "detection.yaml").read_text().replace("recover_hold: 10m", "recover_hold: later")
    (config / "detection.yaml").write_text(text)
    monkeypatch.setenv("FAILOVER_CONFIG_DIR", str(config))
    out = run(cli, "runbooks", "check", code=1)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "recover_hold: later" in row)
    assert f"config/detection.yaml:{line}: confirm.recover_hold: 'later' is not a duration" in out
    assert "1 problem(s)" in out


def test_watch_status_and_confirm(cli: CliRunner) -> None:
    run(cli, "init")
    out = run(cli, "watch", "status")
    assert "graph: not configured" in out and "Exchange Online: operational - no readings yet" in out
    refused = run(cli, "watch", "confirm", "exchange online", "--reason", "users report NDRs", code=1)
    assert "Pass --yes to send from a script" in refused  # confirming sends: never without a question
    out = run(cli, "watch", "confirm", "exchange online", "--reason", "users report NDRs", "--yes")
    assert out.startswith("confirming Exchange Online opens the incident 'Exchange Online outage'")
    assert "--- Step 1 · SMS to oncall: 3 recipient(s)" in out and "incident 1 opened; 1 activation(s)" in out
    assert "Exchange Online: confirmed incident 1 - confirmed by cli:" in run(cli, "watch", "status")
    again = run(cli, "watch", "confirm", "Exchange Online", "--reason", "again", "--yes")
    assert "confirming Exchange Online joins incident 1" in again and "already part of an open incident" in again
    assert "'Yammer' is not watched" in run(cli, "watch", "confirm", "Yammer", "--reason", "x", "--yes", code=1)
