"""The audit chain is keyed and anchored outside the database (issue 11, item 4), SQLite and PostgreSQL.

The attacker here has write access to the database and nothing else: they can
recompute plain SHA-256 hashes (the old chain's), delete rows and move the
head, but they do not have FAILOVER_AUDIT_KEY and cannot touch the checkpoint
files, the log or the mailbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import delete, select, update

from failover import anchors
from failover.cli import main
from failover.engine import audit
from failover.errors import ConfigError
from failover.models import AuditEvent, AuditHead
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.integration.test_audit import append, verdict


def rewrite_without_the_key(runtime: Runtime, event_id: int, **changes: object) -> None:
    """Edit one event and recompute every later hash the only way the attacker can: plain SHA-256."""
    with runtime.database.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(**changes))
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.id >= event_id).order_by(AuditEvent.id)))
        prev = session.get(AuditEvent, event_id - 1).hash if event_id > 1 else audit.GENESIS  # type: ignore[union-attr]
        for event in events:
            event.prev_hash = prev
            event.hash = prev = audit.legacy_hash(audit.canonical(audit._as_row(event)))
        head = session.get(AuditHead, 1)
        assert head is not None
        head.hash = prev


def truncate_to(runtime: Runtime, seq: int) -> None:
    """Drop the newest events and move the head back: every event left is genuine."""
    with runtime.database.transaction() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id > seq))
        last = session.get(AuditEvent, seq)
        assert last is not None
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=last.hash))


def checkpoint_file(runtime: Runtime) -> Path:
    return runtime.settings.checkpoint_dirs[0] / anchors.FILE_NAME


def test_an_event_rewritten_with_recomputed_hashes_is_detected(runtime: Runtime) -> None:
    append(runtime, 5)
    rewrite_without_the_key(runtime, 3, actor="mallory")
    result = verdict(runtime)
    assert not result.ok and result.bad_id == 3
    assert "rewritten without the audit key" in result.reason


def test_dropping_the_newest_events_is_caught_by_the_checkpoint(runtime: Runtime) -> None:
    append(runtime, 5)
    assert runtime.audit.checkpoint()["written"]
    truncate_to(runtime, 3)
    assert verdict(runtime).ok  # the key alone cannot tell: every event left is genuine
    [newest] = anchors.read_file(checkpoint_file(runtime)).checkpoints
    with runtime.database.reading() as session:
        problems = audit.check_anchors(session, [newest])
    assert len(problems) == 1 and "truncated" in problems[0] and "the newest 2 were dropped" in problems[0]


def test_audit_verify_reports_truncation_from_the_checkpoint_files(runtime: Runtime, runner: CliRunner) -> None:
    append(runtime, 4)
    runtime.audit.checkpoint()
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact: 4 events verified" in intact.output and "(4 events)" in intact.output
    truncate_to(runtime, 2)
    result = runner.invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "recorded 4 events, the chain now holds 2" in result.output


def test_a_checkpoint_kept_elsewhere_exposes_a_rewrite(runtime: Runtime, runner: CliRunner, tmp_path: Path) -> None:
    """Someone who had the key (an operator gone rogue) re-signs history; the e-mailed checkpoint disagrees."""
    append(runtime, 3)
    runtime.audit.checkpoint()
    saved = tmp_path / "from-the-mailbox.json"
    saved.write_text(checkpoint_file(runtime).read_text().splitlines()[-1])
    checkpoint_file(runtime).unlink()  # and they cleaned up the files they could reach
    with runtime.database.transaction() as session:
        key = audit.key_of(session)
        event = session.get(AuditEvent, 3)
        assert event is not None
        event.actor = "mallory"
        event.hash = key.chain(audit.canonical(audit._as_row(event)))
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=event.hash))
    assert verdict(runtime).ok
    result = runner.invoke(main, ["audit", "verify", "--checkpoints", str(saved)])
    assert result.exit_code == 1 and "event 3 is not the one the checkpoint" in result.output


def test_a_forged_checkpoint_is_not_trusted(runtime: Runtime, runner: CliRunner, tmp_path: Path) -> None:
    append(runtime, 2)
    forged = audit.Checkpoint(1, "f" * 64, dt.datetime.now(dt.UTC), runtime.audit_key.id, 1, signature="0" * 64)
    path = tmp_path / "forged.jsonl"
    path.write_text(json.dumps(forged.as_json()) + "\nnot json\n")
    result = runner.invoke(main, ["audit", "verify", "--checkpoints", str(path)])
    assert result.exit_code == 1
    assert "not signed with this FAILOVER_AUDIT_KEY" in result.output and f"{path}:2:" in result.output


def test_checkpoints_go_to_every_sink_signed_and_private(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, runner: CliRunner, tmp_path: Path
) -> None:
    append(runtime, 3)
    with caplog.at_level(logging.INFO, logger="failover.audit.checkpoint"):
        result = runtime.audit.checkpoint()
    assert result == {"written": True, "seq": 3, "sinks": ["log", f"directory {runtime.settings.checkpoint_dirs[0]}"]}
    [line] = [r.getMessage() for r in caplog.records if r.name == "failover.audit.checkpoint"]
    logged = audit.Checkpoint.from_json(json.loads(line.removeprefix("audit checkpoint ")))
    assert logged.seq == 3 and logged.verifies(runtime.audit_key)
    assert stat.S_IMODE(checkpoint_file(runtime).stat().st_mode) == 0o600
    assert runtime.audit.checkpoint()["written"] is False  # nothing new since: nothing to anchor
    exported = runner.invoke(main, ["status", "export", str(tmp_path / "site")])
    assert exported.exit_code == 0, exported.output
    published = json.loads((tmp_path / "site" / "audit-checkpoint.json").read_text())
    assert audit.Checkpoint.from_json(published) == logged


def test_no_checkpoint_anchors_a_broken_chain(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    append(runtime, 3)
    with runtime.database.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(actor="mallory"))
    result = runtime.audit.checkpoint()
    assert result["written"] is False and "broken at event 2" in result["verdict"]
    assert not checkpoint_file(runtime).exists()


def test_the_console_verifies_from_the_newest_checkpoint(runtime: Runtime, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("viewer")
    append(runtime, 5)
    runtime.audit.checkpoint()
    append(runtime, 2)
    page = client.get("/audit").get_data(as_text=True)
    # 7 = the account's creation, its login and the 5 appended; the page walked only the 2 after it.
    assert "2 events after the signed checkpoint at event 7" in page
    with runtime.database.transaction() as session:  # an edit before the checkpoint: the page no longer walks there
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(actor="mallory"))
    assert "Chain verified" in client.get("/audit").get_data(as_text=True)
    assert not verdict(runtime).ok  # ... `audit verify` walks everything and finds it
    with runtime.database.transaction() as session:  # an edit after it: the page sees it at once
        session.execute(update(AuditEvent).where(AuditEvent.id == 8).values(actor="mallory"))
    assert "Chain broken" in client.get("/audit").get_data(as_text=True)


def test_an_unkeyed_chain_is_carried_over_and_stays_protected(runtime: Runtime, runner: CliRunner) -> None:
    """A chain written before keys: `failover init` starts the keyed chain with an audit.keyed event."""
    with runtime.database.transaction() as session:  # what versions before the key wrote
        prev = audit.GENESIS
        for n in range(1, 4):
            row = {
                "id": n,
                "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "actor": "old",
                "action": "old.event",
                "target_type": None,
                "target_id": None,
                "incident_id": None,
                "details": {"n": n},
                "prev_hash": prev,
            }
            row["hash"] = prev = audit.legacy_hash(audit.canonical(row))
            session.add(AuditEvent(**row))
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=3, hash=prev))
    assert "not signed with FAILOVER_AUDIT_KEY" in verdict(runtime).reason
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert "signed with FAILOVER_AUDIT_KEY from here on" in result.output
    append(runtime, 2)
    carried = verdict(runtime)
    assert carried.ok and carried.checked == 6
    with runtime.database.reading() as session:
        marker = session.get(AuditEvent, 4)
        assert marker is not None and marker.action == "audit.keyed"
        assert marker.details["legacy_events"] == 3
    rewrite_without_the_key(runtime, 2, actor="mallory")  # the old part is as safe as the new now
    broken = verdict(runtime)
    assert not broken.ok and broken.bad_id == 4


def test_a_process_with_another_key_is_refused(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    append(runtime, 1)
    monkeypatch.setenv("FAILOVER_AUDIT_KEY", "another-key-" + "9" * 32)
    other = Runtime(load_settings())
    try:
        with pytest.raises(ConfigError, match="signed with another FAILOVER_AUDIT_KEY"):
            other.audit.check_key()
        with pytest.raises(ConfigError, match="every process must use the same key"):
            append(other, 1)
        with other.database.reading() as session:
            assert "another key" in audit.verify(session).reason
    finally:
        other.close()
    assert verdict(runtime).ok and verdict(runtime).checked == 1


def test_a_server_database_needs_the_key(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("FAILOVER_AUDIT_KEY")
    monkeypatch.setenv("FAILOVER_DATABASE_URL", "postgresql+psycopg://failover@db/failover")
    with pytest.raises(ConfigError, match="FAILOVER_AUDIT_KEY is required with a server database"):
        load_settings().audit_key_bytes()
    monkeypatch.setenv("FAILOVER_DATABASE_URL", "sqlite:///" + env["FAILOVER_DATA_DIR"] + "/x.db")
    generated = load_settings().audit_key_bytes()  # embedded: generated once into the data dir, 0600
    assert generated == load_settings().audit_key_bytes() and len(generated) == 64
    assert stat.S_IMODE((Path(env["FAILOVER_DATA_DIR"]) / "audit_key").stat().st_mode) == 0o600


def test_beat_writes_checkpoints_on_the_configured_interval(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from failover.celery_app import create_celery

    monkeypatch.setenv("FAILOVER_AUDIT_CHECKPOINT_INTERVAL", "120")
    runtime = Runtime(load_settings())
    try:
        entry = create_celery(runtime).conf.beat_schedule["audit-checkpoint"]
    finally:
        runtime.close()
    assert entry["task"] == "failover.tasks.audit_checkpoint" and entry["schedule"] == 120


def test_the_first_checkpoint_of_a_day_is_emailed(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, database_url: str, fake_sendgrid
) -> None:  # type: ignore[no-untyped-def]
    from failover.db import migrate

    values = {
        "FAILOVER_DATABASE_URL": database_url,
        "SENDGRID_API_KEY": fake_sendgrid.api_key,
        "SENDGRID_FROM": "alerts@failover.example",
        "FAILOVER_SENDGRID_API_BASE": fake_sendgrid.url,
        "FAILOVER_AUDIT_CHECKPOINT_EMAIL": "auditor@personal.example",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    try:
        with freeze_time("2026-03-02 09:00:00"):
            append(runtime, 2)
            assert "email" in runtime.audit.checkpoint()["sinks"]
        with freeze_time("2026-03-02 09:05:00"):
            append(runtime, 1)
            assert "email" not in runtime.audit.checkpoint()["sinks"]  # the day already has its mail
    finally:
        runtime.close()
    [mail] = fake_sendgrid.sends
    assert mail["personalizations"] == [{"to": [{"email": "auditor@personal.example"}]}]
    assert mail["subject"] == "failover audit checkpoint 2026-03-02: 2 events"
    assert '"seq": 2' in mail["content"][0]["value"]
