"""Set-up as a new user meets it: `.env` is read, the demo stays on this machine, routine lines stay quiet."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from failover import logs
from failover.cli import main
from failover.domain.detection import config as detection
from tests.conftest import REPO


def forget_after(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Variables the command under test may set in this process: removed again after the test."""
    for name in names:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def test_the_cli_reads_dot_env_from_the_working_directory_without_overriding_the_environment(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAILOVER_ENV_FILE", raising=False)  # the default: .env in the working directory
    forget_after(monkeypatch, "FAILOVER_DATABASE_URL", "FAILOVER_PRICE_CURRENCY")
    from_file = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(
        f"FAILOVER_DATABASE_URL=sqlite:///{from_file}\nFAILOVER_DATA_DIR=/nonexistent/ignored\n"
    )
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert f"database ready: sqlite:///{from_file}" in result.output  # read from .env
    assert from_file.exists()
    assert not Path("/nonexistent/ignored").exists()  # FAILOVER_DATA_DIR was set for real: it wins


def test_dot_env_can_be_switched_off(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAILOVER_ENV_FILE", "")
    forget_after(monkeypatch, "FAILOVER_DATABASE_URL")
    (tmp_path / ".env").write_text(f"FAILOVER_DATABASE_URL=sqlite:///{tmp_path / 'no.db'}\n")
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert "no.db" not in result.output and not (tmp_path / "no.db").exists()


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_the_demo_detection_policy_probes_nothing_outside_this_machine() -> None:
    config = detection.load(REPO / "config")
    targets = [
        probe.host if probe.kind == "smtp" else urlsplit(probe.url or "").hostname for probe in config.active_probes
    ]
    assert all(host and _local(host) for host in targets), f"the demo would probe {targets}"


@pytest.mark.parametrize(
    ("logger", "message", "args"),
    [
        ("celery.beat", "Scheduler: Sending due task %s (%s)", ("sweep", "failover.tasks.sweep")),
        ("celery.beat", "Scheduler: Sending due task %s (%s)", ("follow-up", "failover.tasks.follow_up")),
        ("celery.worker.strategy", "Task %(name)s[%(id)s] received", {"name": "failover.tasks.sweep", "id": "1"}),
        (
            "celery.app.trace",
            "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
            {"name": "failover.tasks.follow_up", "id": "2", "runtime": 0.01, "return_value": "{'batches': 0}"},
        ),
    ],
)
def test_the_every_two_seconds_lines_are_debug(
    logger: str, message: str, args: object, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("INFO")
        record_args = (args,) if isinstance(args, dict) else args
        logging.getLogger(logger).info(message, *record_args)  # type: ignore[arg-type]
        logging.getLogger("celery.app.trace").info(
            "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
            {"name": "failover.tasks.send_batch", "id": "3", "runtime": 0.2, "return_value": "{'sent': 3}"},
        )
        logging.getLogger("failover.tasks").error("a real problem")
        quiet = capsys.readouterr().err
        logs.configure("DEBUG")
        logging.getLogger(logger).info(message, *record_args)  # type: ignore[arg-type]
        verbose = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved
    assert "failover.tasks.send_batch" in quiet and "a real problem" in quiet  # sends and errors stay
    assert "sweep" not in quiet and "follow_up" not in quiet and "follow-up" not in quiet
    assert " DEBUG " in verbose and ("sweep" in verbose or "follow" in verbose)
