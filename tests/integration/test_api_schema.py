"""The OpenAPI document at /api/v1/openapi.json matches the implementation (schemathesis).

schemathesis reads the document the app serves and sends generated requests,
valid and invalid, to every operation, checking that no answer is a server
error, that status codes, content types and bodies are the documented ones,
and that invalid input is refused. Runs on SQLite with an operator token and
a seeded incident, activation and notice, so some generated ids exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from failover.engine import notices, tokens
from failover.runtime import Runtime
from tests.conftest import add_user

pytestmark = pytest.mark.integration
EXAMPLES = 20


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'failover.db'}"


@pytest.fixture
def operator_token(runtime: Runtime) -> str:
    runtime.activations.activate(runbook_id="exchange-outage", reason="seed", actor="seed")
    add_user(runtime, "olga", "operator")
    with runtime.database.transaction() as session:
        notices.post(session, title="Seeded", body="A notice.", severity="minor", actor="seed")
        return tokens.create(session, name="schemathesis", role="operator", days=1, actor="seed", owner="olga")[1]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_matches_its_openapi_document(app: Flask, operator_token: str, mode: GenerationMode) -> None:
    # schemathesis.pytest.from_fixture does not run under pytest 9 (it renames test nodes through a
    # private attribute), so each operation is driven with its hypothesis strategy directly.
    headers = {"Authorization": f"Bearer {operator_token}"}
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    loaded.config.update(headers=headers)  # so negative cases know the token is supplied, not missing
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == 16  # every route under /api/v1/ but the document itself
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate()

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid input
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_is_openapi_3_1_and_covers_every_api_route(app: Flask, operator_token: str) -> None:
    client = app.test_client()
    doc = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {operator_token}"}).get_json()
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi":
            path = rule.rule.replace("<id:", "{").replace(">", "}")
            served.update((path, m) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
    assert documented == served
    runbooks = doc["components"]["schemas"]["ActivationCreate"]["properties"]["runbooks"]["items"]["enum"]
    assert runbooks == ["exchange-outage", "m365-suite-outage", "teams-outage"]
