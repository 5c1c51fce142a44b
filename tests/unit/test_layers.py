"""The import contracts bite: an engine module that imports Celery or a provider SDK fails ``lint-imports``.

Runs the real ``lint-imports`` with the project's own contracts (pyproject.toml) on a copy of the package
with one import injected, so a contract that silently stopped checking anything would fail here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_copy(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    shutil.copytree(ROOT / "failover", tmp_path / "failover", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "failover" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.parametrize(
    ("line", "broken"),
    [
        ("import celery  # noqa", "engine does not know about the web, the CLI, Celery or Flask"),
        ("import twilio  # noqa", "provider SDKs only in channels/ and sources/"),
        ("import failover.services.relay  # noqa", "layers: cli > web | tasks"),
    ],
    ids=["celery", "twilio", "upwards"],
)
def test_an_engine_module_reaching_up_or_out_breaks_a_contract(tmp_path: Path, line: str, broken: str) -> None:
    result = lint_copy(tmp_path, "engine/relay.py", line)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    _, _, broken_section = report.partition("Broken contracts")
    assert broken in broken_section, report  # that contract, and it names the module that broke it
    assert "failover.engine.relay ->" in broken_section, report
