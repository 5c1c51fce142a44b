"""A YAML alias bomb is a file:line problem, not memory exhaustion (issue 11, item 11).

Nine anchors of nine aliases each stand for 9**9 (387 million) values while the
file is a few hundred bytes. ``runbooks check`` runs here in a subprocess whose
address space is capped at 1 GiB, so the hole (expanding the aliases while
validating) shows as a crash instead of taking the machine down with it.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from failover.domain import yamlfile
from tests.conftest import REPO


def bomb(key: str) -> str:
    """``key`` holds the bomb; the anchors sit in a list the schema does not know."""
    lines = ["x-anchors:", "  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 9):
        name, inner = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"  - &{name} [{', '.join(['*' + inner] * 9)}]")
    lines.append(f"{key}: *i")
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    limit = 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_alias_bombs_in_every_config_file_are_refused_with_file_and_line(tmp_path: Path) -> None:
    config, books = tmp_path / "config", tmp_path / "runbooks"
    shutil.copytree(REPO / "config", config)
    shutil.copytree(REPO / "runbooks", books)
    (config / "contacts.yaml").write_text(bomb("people"))
    (config / "detection.yaml").write_text(bomb("watch"))
    (books / "exchange-outage.yaml").write_text(bomb("steps"))
    env = {
        **os.environ,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_DATA_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "failover", "runbooks", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_cap_memory,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    output = (result.stdout + result.stderr).splitlines()
    for name in ("contacts.yaml", "detection.yaml", "exchange-outage.yaml"):
        found = [line for line in output if re.search(rf"{re.escape(name)}:\d+: aliases would expand", line)]
        assert found and "nodes from 22 (an alias bomb?)" in found[0], "\n".join(output)


def test_anchors_used_as_meant_still_load() -> None:
    text = "defaults: &defaults {groups: [oncall]}\npeople:\n  - {<<: *defaults, id: a}\n  - {<<: *defaults, id: b}\n"
    document = yamlfile.load(text, "contacts.yaml")
    assert document.problems == []
    assert document.data["people"][1] == {"groups": ["oncall"], "id": "b"}


def test_recursion_and_depth_are_problems_too() -> None:
    assert "recursive alias" in yamlfile.load("a: &a [1, *a]\n", "r.yaml").problems[0].message
    deep = yamlfile.load("x: " + "[" * 150 + "]" * 150 + "\n", "d.yaml").problems
    assert deep[0].message == "nested deeper than 100 levels"
