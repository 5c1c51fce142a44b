"""The set-up promises: the compose file is valid, .ci/run calls make test, the README starts with both commands."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.conftest import REPO
from tests.services import require


def test_readme_starts_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make run") for line in head) and any(line.startswith("make test") for line in head)


def test_ci_runs_make_test() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_compose_file_has_the_production_layout() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["beat"]["deploy"]["replicas"] == 1
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "web"))


def test_docker_compose_accepts_the_file() -> None:
    v2 = (
        shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    )
    command = ["docker", "compose"] if v2 else ["docker-compose"] if shutil.which("docker-compose") else None
    require(command is not None, "neither `docker compose` nor docker-compose is installed")
    assert command is not None
    result = subprocess.run(
        [*command, "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "FAILOVER_SECRET_KEY": "x", "FAILOVER_AUDIT_KEY": "x" * 32},
    )
    assert result.returncode == 0, result.stderr


def test_the_lock_file_pins_every_dependency_with_hashes() -> None:
    """requirements.lock (SECURITY.md, "Dependencies") must follow pyproject.toml: run `make lock` after a change."""
    import re
    import tomllib

    def name(requirement: str) -> str:
        return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]).lower()

    wanted = {name(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    pins = re.findall(
        r"^([A-Za-z0-9._-]+)==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)",
        (REPO / "requirements.lock").read_text(),
        re.M,
    )
    pinned = {name(package) for package, _ in pins}
    assert wanted - pinned == set(), "dependencies missing from requirements.lock: run `make lock`"
    assert len(pins) >= len(wanted) and all("--hash=sha256:" in hashes for _, hashes in pins)
