"""A bad edit never stops a broadcast: every valid file loads, a broken one keeps its last good version, loudly.

Each test copies the demo config, loads it once as a running process would
(which records the last good version of every file in the database), then
breaks a file the way people do on a Friday afternoon.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, text

from failover.cli import main
from failover.db import migrate
from failover.engine import tokens
from failover.models import AuditEvent, Incident, Notice
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import REPO, AuthActions, csrf_from
from tests.integration.test_web import sent_all

pytestmark = pytest.mark.integration

TYPO = ("activation: manual", "activation: manaul")  # in teams-outage.yaml


@pytest.fixture
def dirs(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> tuple[Path, Path]:
    config, books = tmp_path / "config", tmp_path / "runbooks"
    shutil.copytree(REPO / "config", config)
    shutil.copytree(REPO / "runbooks", books)
    monkeypatch.setenv("FAILOVER_CONFIG_DIR", str(config))
    monkeypatch.setenv("FAILOVER_RUNBOOKS_DIR", str(books))
    monkeypatch.setenv("FAILOVER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # problems name files as people typed them: config/..., runbooks/...
    return config, books


def start(dirs: tuple[Path, Path]) -> Runtime:
    """A new process: nothing in memory, only the files and the database."""
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    return runtime


@pytest.fixture
def rt(dirs: tuple[Path, Path]) -> Iterator[Runtime]:
    runtime = start(dirs)
    assert runtime.config.report().ok  # Monday: everything loads, and is remembered as the last good version
    yield runtime
    runtime.close()


def web(runtime: Runtime, username: str = "olga") -> FlaskClient:
    from failover.web import create_app

    client = create_app(runtime=runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, runtime).login("operator", username=username)
    return client


def break_file(path: Path, old: str, new: str) -> int:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return next(n for n, row in enumerate(path.read_text().splitlines(), 1) if new in row)


def stand_down(client: FlaskClient, incident_id: int):  # type: ignore[no-untyped-def]
    html = client.get(f"/incidents/{incident_id}/resolve").get_data(as_text=True)
    fingerprint = html.split('name="fingerprint" value="')[1].split('"')[0]
    form = {"csrf_token": csrf_from(html), "confirm": "yes", "fingerprint": fingerprint}
    return client.post(f"/incidents/{incident_id}/resolve", data=form)


def activate(client: FlaskClient, runbook: str) -> str:
    data = {"csrf_token": csrf_from(client.get("/activate").get_data(as_text=True)), "runbook": runbook, "reason": "x"}
    preview = client.post("/activate", data=data)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    html = preview.get_data(as_text=True)
    fingerprint = html.split('name="fingerprint" value="')[1].split('"')[0]
    confirmed = client.post("/activate", data={**data, "confirm": "yes", "fingerprint": fingerprint})
    assert confirmed.status_code == 302, confirmed.get_data(as_text=True)
    return confirmed.headers["Location"]


def test_a_broken_runbook_beside_healthy_ones_blocks_nothing_and_says_so(rt: Runtime, dirs: tuple[Path, Path]) -> None:
    _, books = dirs
    line = break_file(books / "teams-outage.yaml", *TYPO)
    (books / "brand-new.yaml").write_text("id: brand-new\ntitle: [unclosed\n")  # never loaded: no last good
    client = web(rt)

    for page in ("/", "/activate"):
        html = client.get(page).get_data(as_text=True)
        assert 'id="config-problems"' in html  # the red banner
        assert f"runbooks/teams-outage.yaml:{line}: trigger.activation" in html
        assert "the last good version" in html and "runbooks/brand-new.yaml:" in html and "not loaded" in html
    # The healthy runbook goes out; so does the broken one, as it was before the typo.
    assert "/activations/" in activate(client, "exchange-outage")
    assert "/activations/" in activate(client, "teams-outage")
    assert "brand-new" not in rt.config.catalog().runbooks

    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["ready"]  # the console stays in service
    config = ready.get_json()["config"]
    assert not config["ok"] and any(f"teams-outage.yaml:{line}" in p for p in config["problems"])
    assert config["runbooks"]["exchange-outage"] == {"ready": True, "version": "current"}
    assert config["runbooks"]["teams-outage"] == {"ready": False, "version": "last good"}

    # Stand-down, in the console and through the API.
    assert stand_down(client, 1).status_code == 302
    with rt.database.transaction() as session:
        _, secret = tokens.create(session, name="ops", role="operator", days=1, actor="test", owner="olga")
    answer = client.post("/api/v1/incidents/2/resolve", json={}, headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    with rt.database.reading() as session:
        assert [i.state for i in session.scalars(select(Incident).order_by(Incident.id))] == ["resolved", "resolved"]


def test_a_process_started_while_files_are_broken_uses_the_shared_last_good(
    rt: Runtime, dirs: tuple[Path, Path]
) -> None:
    config, books = dirs
    title = rt.config.catalog().runbook("teams-outage").title  # type: ignore[union-attr]
    break_file(books / "teams-outage.yaml", *TYPO)
    contacts_line = break_file(config / "contacts.yaml", 'phone: "+12025550102"', 'phone: "555-0102"')
    detection_line = break_file(config / "detection.yaml", "recover_hold: 10m", "recover_hold: later")
    worker = start(dirs)  # e.g. a worker restarted over the weekend: it never saw the good files
    try:
        catalog = worker.config.catalog()
        assert catalog.runbook("teams-outage").title == title  # type: ignore[union-attr]
        assert len(catalog.contacts.people) == 8 and catalog.contacts.person("bob").phone == "+12025550102"  # type: ignore[union-attr]
        assert worker.config.detection().confirm.recover_hold.total_seconds() == 600
        shown = [str(p) for p in worker.config.report().problems]
        assert any(p.startswith(f"config/contacts.yaml:{contacts_line}: people.1.phone") for p in shown)
        assert any(p.startswith(f"config/detection.yaml:{detection_line}: confirm.recover_hold") for p in shown)
        banner = web(worker, "oscar").get("/").get_data(as_text=True)
        assert f"config/detection.yaml:{detection_line}" in banner and f"config/contacts.yaml:{contacts_line}" in banner
    finally:
        worker.close()


def test_stand_down_never_depends_on_the_config_files(dirs: tuple[Path, Path]) -> None:
    config, _ = dirs
    runtime = start(dirs)
    try:
        client = web(runtime)
        activate(client, "exchange-outage")
        sent_all(runtime)
        # Then contacts.yaml breaks, and this installation never remembered a good one (say, a new database).
        break_file(config / "contacts.yaml", "groups:", "groups: [")
        with runtime.database.transaction() as session:
            session.execute(text("DELETE FROM config_snapshots"))
        fresh = start(dirs)
        try:
            client = web(fresh, "oscar")
            assert client.get("/activate").status_code == 503  # nothing can be planned without contacts...
            page = client.get("/incidents/1/resolve")
            assert page.status_code == 200  # ...but standing down still works
            html = page.get_data(as_text=True)
            assert "cannot be sent" in html and "config/contacts.yaml" in html
            assert stand_down(client, 1).status_code == 302
            with fresh.database.reading() as session:
                assert session.get_one(Incident, 1).state == "resolved"
                assert {n.state for n in session.scalars(select(Notice))} == {"closed"}
                (skipped,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "all_clear.unavailable"))
            assert skipped.details["runbook"] == "exchange-outage"
        finally:
            fresh.close()
    finally:
        runtime.close()


def test_the_cli_activates_a_healthy_runbook_and_warns(rt: Runtime, dirs: tuple[Path, Path]) -> None:
    _, books = dirs
    line = break_file(books / "teams-outage.yaml", *TYPO)
    result = CliRunner().invoke(main, ["activate", "exchange-outage", "--reason", "451 4.3.2", "--yes"])
    assert result.exit_code == 0, result.output
    assert "activation 1 (queued) for incident 1" in result.output
    assert f"warning: runbooks/teams-outage.yaml:{line}: trigger.activation" in result.output
    assert "last good version" in result.output
    assert "incident 1 resolved" in CliRunner().invoke(main, ["resolve", "1", "--yes"]).output
    check = CliRunner().invoke(main, ["runbooks", "check"])
    assert check.exit_code == 1 and f"runbooks/teams-outage.yaml:{line}" in check.output
