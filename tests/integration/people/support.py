"""Shared set-up for the people tests: a config dir with people.yaml, and Entra + Graph users over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.db import migrate
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import write_config
from tests.fakes.graph_users import FakeGraphUsers
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, FakeEntra
from tests.fakes.tls import TestCA

PEOPLE_YAML: dict[str, Any] = {
    "sources": [{"kind": "graph", "interval": "6h"}, {"kind": "yaml"}],
    "groups": {
        "berlin": {"description": "Everyone in Berlin", "rules": {"office_location": "Berlin*"}},
        "it": {"rules": {"department": "IT"}},
        "engineers": {"rules": {"job_title": "engineer"}},
        "named": {"rules": {"upn": ["user00001@contoso.example"]}},
    },
    "safety": {"max_removal": "10%", "stale_after": "48h"},
}

BERLIN_RUNBOOK = {
    "id": "berlin-alert",
    "title": "Berlin office alert",
    "trigger": {"services": ["Exchange Online"], "activation": "manual"},
    "steps": [{"channel": "sms", "to": ["group:berlin"], "text": "Berlin: email is down, use SMS."}],
}


def people_config(tmp_path: Path, people_yaml: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """contacts.yaml with one on-call person, people.yaml, and the demo runbooks plus one for group:berlin."""
    people = [{"id": "ops", "name": "Ops Person", "phone": "+12025550101", "groups": ["oncall", "it-leads"]}]
    config, runbooks = write_config(tmp_path, people)
    (config / "people.yaml").write_text(yaml.safe_dump(people_yaml or PEOPLE_YAML, sort_keys=False))
    (runbooks / "berlin-alert.yaml").write_text(yaml.safe_dump(BERLIN_RUNBOOK, sort_keys=False))
    return config, runbooks


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))  # one throwaway CA per module: key generation is not free


@pytest.fixture
def microsoft(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeEntra, FakeGraphUsers]]:
    ca = test_ca
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle))  # how msal's and our requests trust the fakes
    with (
        FakeEntra(ssl_context=ca.server_context()) as entra,
        FakeGraphUsers(entra, ssl_context=ca.server_context(), page_size=50) as graph,
    ):  # type: ignore[union-attr]
        yield entra, graph  # type: ignore[misc]


@pytest.fixture
def graph_runtime(
    env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    microsoft: tuple[FakeEntra, FakeGraphUsers],
) -> Iterator[tuple[Runtime, FakeGraphUsers, list[float]]]:
    """A runtime whose people come from the fake Graph; Retry-After waits are recorded, not slept."""
    entra, graph = microsoft
    config, runbooks = people_config(tmp_path)
    # A short Graph timeout so the "Graph hangs" case takes a second, not fifteen.
    (config / "detection.yaml").write_text('watch: ["Exchange Online"]\ngraph: {poll_interval: 60s, timeout: 1s}\n')
    for name, value in {
        "FAILOVER_DATABASE_URL": database_url,
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(runbooks),
        "FAILOVER_GRAPH_TENANT_ID": TENANT,
        "FAILOVER_GRAPH_CLIENT_ID": CLIENT_ID,
        "FAILOVER_GRAPH_CLIENT_SECRET": CLIENT_SECRET,
        "FAILOVER_GRAPH_API_BASE": graph.url,
        "FAILOVER_GRAPH_AUTHORITY_BASE": entra.url,
    }.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    waits: list[float] = []
    runtime.people._sleep = waits.append
    runtime.config.catalog()  # contacts.yaml into the people table, as any process does when it loads the config
    yield runtime, graph, waits
    runtime.close()
