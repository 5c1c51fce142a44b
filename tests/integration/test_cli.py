"""The failover command: init, runbooks check, activate --dry-run, audit verify, status export."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from failover.cli import main
from tests.conftest import REPO


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = cli.invoke(main, list(args), input=stdin)
    assert result.exit_code == code, result.output + (str(result.exception) if result.exception else "")
    return result.output


def test_init_creates_the_database_and_checks_config(cli: CliRunner, env: dict[str, str]) -> None:
    out = run(cli, "init")
    assert "database ready" in out and "config ok: 3 runbook(s), 8 contact(s)" in out
    assert (Path(env["FAILOVER_DATA_DIR"]) / "failover.db").exists()
    assert "config ok" in run(cli, "init")  # safe to run again


def test_init_demo_installs_config_where_none_exists(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILOVER_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("FAILOVER_RUNBOOKS_DIR", str(tmp_path / "books"))
    out = run(cli, "init", "--demo")
    assert "installed demo config" in out and "installed demo runbooks" in out
    assert (tmp_path / "cfg" / "contacts.yaml").read_text() == (REPO / "config" / "contacts.yaml").read_text()
    assert "installed demo" not in run(cli, "init", "--demo")  # never overwrites


def test_runbooks_check_passes_on_the_demo(cli: CliRunner) -> None:
    assert "ok: 3 runbook(s), 8 contact(s), 4 group(s)" in run(cli, "runbooks", "check")


def test_runbooks_check_reports_file_and_line_and_exits_1(cli: CliRunner, tmp_path: Path) -> None:
    books = tmp_path / "books"
    (books / "templates").mkdir(parents=True)
    (books / "bad.yaml").write_text("id: bad\ntitle: Bad\nsteps:\n  - {channel: fax, to: [alice], text: hi}\n")
    result = cli.invoke(main, ["runbooks", "check", str(books)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "books/bad.yaml:4: steps.0.channel: unknown channel 'fax'; use one of sms, email, status, voice, chat",
        "1 problem(s)",
    ]


def test_activate_dry_run_renders_and_sends_nothing(cli: CliRunner, env: dict[str, str]) -> None:
    run(cli, "init")
    out = run(
        cli, "activate", "exchange-outage", "--dry-run", "--reason", "ticket INC-4711", "--message", "Use SMS for now."
    )
    assert "dry run: nothing sent" in out
    assert "sms: 3 recipient(s)" in out and "email: 7 recipient(s)" in out
    assert "--- Step 1 · SMS to oncall: 3 recipient(s) via the outbox only: NOT sent to anyone" in out
    assert "Note from IT: Use SMS for now.\n\n-- IT on call" in out  # the message is shown to recipients
    assert "INC-4711" not in out.split("(preview")[1]  # the internal note is in no text
    assert "skipped: 1" in out and "erin (Step 2 · email to all-staff): no email address" in out
    assert "+12025550101" not in out  # no contact data at all
    db = sqlite3.connect(Path(env["FAILOVER_DATA_DIR"]) / "failover.db")
    assert db.execute("select count(*) from deliveries").fetchone() == (0,)


def test_activate_queues_and_audit_verifies(cli: CliRunner, env: dict[str, str]) -> None:
    run(cli, "init")
    out = run(cli, "activate", "exchange-outage", "--reason", "drill", "--yes")
    assert "activation 1 (queued) for incident 1: sms: 3, email: 7, status: 1; 1 skipped" in out
    # contacts.yaml became a people snapshot at init (1 event), then the incident and the activation (2)
    assert "audit chain intact: 3 events verified" in run(cli, "audit", "verify")
    db = sqlite3.connect(Path(env["FAILOVER_DATA_DIR"]) / "failover.db")
    db.execute("update audit_events set actor = 'mallory' where id = 2")
    db.commit()
    result = cli.invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "audit chain broken at event 2: contents do not match its hash (edited)" in result.output


def test_unknown_runbook_is_a_clear_error(cli: CliRunner) -> None:
    run(cli, "init")
    out = run(cli, "activate", "nope", "--dry-run", code=1)
    assert "error: no runbook 'nope' (known: exchange-outage, m365-suite-outage, teams-outage)" in out


def test_a_bad_setting_stops_the_command_naming_the_variable(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_PORT", "http")
    out = run(cli, "init", code=1)
    assert "FAILOVER_PORT: Input should be a valid integer" in out


def test_resolve_and_status_export(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    run(cli, "activate", "exchange-outage", "--reason", "drill", "--yes")
    out = run(cli, "resolve", "1", "--yes")
    assert "--- All-clear 1 · SMS to oncall: 3 recipient(s)" in out  # what it sends, shown first
    assert "incident 1 resolved; 1 all-clear activation(s) queued" in out
    assert "already resolved" in run(cli, "resolve", "1", "--yes", code=1)
    out = tmp_path / "site"
    run(cli, "status", "export", str(out))
    assert {"index.html", "status.json", "feed.atom", "feed.rss", "badge.svg", "status.js", "api", "components"} <= {
        p.name for p in out.iterdir()
    }
    assert "Service status" in (out / "index.html").read_text()
    assert 'href="api/v2/summary.json"' in (out / "index.html").read_text()  # relative links: hostable anywhere


def test_resolve_with_an_edited_or_skipped_all_clear(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "activate", "exchange-outage", "--reason", "451 4.3.2", "--yes")
    out = run(cli, "resolve", "1", "--yes", "--all-clear-text", "Mail works again. Nothing to do.")
    assert "Mail works again. Nothing to do." in out and "incident 1 resolved; 1 all-clear" in out
    run(cli, "activate", "exchange-outage", "--reason", "451 4.3.2", "--yes")
    out = run(cli, "resolve", "2", "--yes", "--no-all-clear")
    assert "incident 2 resolved; 0 all-clear activation(s) queued" in out


def test_user_add(cli: CliRunner) -> None:
    run(cli, "init")
    assert "user ops added with role operator" in run(
        cli, "user", "add", "ops", "--role", "operator", "--password-stdin", stdin="correct horse battery\n"
    )
    assert "already exists" in run(
        cli, "user", "add", "ops", "--role", "viewer", "--password-stdin", stdin="correct horse battery\n", code=1
    )
    assert "at least 12 characters" in run(
        cli, "user", "add", "x", "--role", "viewer", "--password-stdin", stdin="short\n", code=1
    )


def test_init_demo_creates_an_admin_once_and_shows_its_generated_password(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    out = run(cli, "init", "--demo")
    line = next(line for line in out.splitlines() if line.startswith("demo console login: admin / "))
    password = line.rsplit(" ", 1)[1]
    kept = Path(env["FAILOVER_DATA_DIR"]) / "demo-admin-password"
    assert kept.read_text().strip() == password and kept.stat().st_mode & 0o777 == 0o600
    assert "demo console login" not in run(cli, "init", "--demo")  # never again, never reset
    assert "admin" in run(cli, "user", "list")
    run(cli, "user", "passwd", "admin", "--password-stdin", stdin="a brand new passphrase\n")
    assert not kept.exists()  # the file no longer tells a valid password


def test_init_without_demo_creates_no_account(cli: CliRunner) -> None:
    assert "demo console login" not in run(cli, "init")
    assert run(cli, "user", "list") == ""


def test_user_passwd_disable_role_and_reset_totp(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "user", "add", "root", "--role", "admin", "--password-stdin", stdin="correct horse battery\n")
    run(cli, "user", "add", "ops", "--role", "operator", "--password-stdin", stdin="correct horse battery\n")
    assert "password of ops changed" in run(
        cli, "user", "passwd", "ops", "--password-stdin", stdin="another pass phrase\n"
    )
    assert "user ops disabled" in run(cli, "user", "disable", "ops")
    assert "ops                      operator  disabled" in run(cli, "user", "list")
    assert "user ops enabled" in run(cli, "user", "disable", "ops", "--enable")
    assert "user ops is now viewer" in run(cli, "user", "role", "ops", "viewer")
    assert "two-step login of ops removed" in run(cli, "user", "reset-totp", "ops")
    assert "last enabled admin" in run(cli, "user", "disable", "root", code=1)
    assert "no user 'ghost'" in run(cli, "user", "disable", "ghost", code=1)


def test_token_create_list_and_revoke(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "user", "add", "ops", "--role", "viewer", "--password-stdin", stdin="correct horse battery\n")
    out = run(cli, "token", "create", "monitoring", "--role", "viewer", "--user", "ops", "--days", "30")
    secret = out.strip().rsplit(" ", 1)[1]
    assert secret.startswith("fo_") and len(secret) > 40 and "viewer for ops" in out
    listing = run(cli, "token", "list")
    assert "monitoring" in listing and "ops" in listing and "active" in listing and secret not in listing
    assert "token 1 revoked" in run(cli, "token", "revoke", "1")
    assert "revoked" in run(cli, "token", "list")
    assert "1 to 366 days" in run(
        cli, "token", "create", "x", "--role", "viewer", "--user", "ops", "--days", "999", code=1
    )
    assert "ops is a viewer" in run(cli, "token", "create", "y", "--role", "operator", "--user", "ops", code=1)
    assert "Missing option '--user'" in run(cli, "token", "create", "z", "--role", "viewer", code=2)
