"""Production operation (issue 16): deploy/ files, JSON logs, Sentry, proxies, gunicorn, heartbeats, idle pace."""

from __future__ import annotations

import datetime as dt
import json
import logging
import pickle
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from failover import logs, observability, pulse
from failover.celery_app import IdleAware, create_celery
from failover.cli import main
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app
from tests.conftest import REPO, SQLITE_ONLY, add_user
from tests.integration import workers
from tests.integration.test_login_throttle import WRONG, events, forwarded

# Metrics other parts of failover export through failover.engine.gauges.register() (people sync).
HOOKED = {"failover_people_snapshot_age_seconds"}


def _exported() -> set[str]:
    names: set[str] = set()
    for source in ("failover/metrics.py", "failover/engine/gauges.py"):
        names |= set(re.findall(r'"(failover_[a-z_]+)"', (REPO / source).read_text()))
    with_suffixes = {f"{name}{suffix}" for name in names for suffix in ("", "_bucket", "_count", "_sum")}
    return with_suffixes | HOOKED


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bfailover_[a-z_]+\b", expr))


def test_the_grafana_dashboard_parses_and_charts_only_metrics_failover_exports() -> None:
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["panels"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10 and all(expr.strip() for expr in exprs)
    used = set().union(*(_metric_names(expr) for expr in exprs))
    assert used - _exported() == set()
    assert {"failover_queue_depth", "failover_provider_request_seconds_bucket", "failover_circuit_open"} <= used
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_alert_rules_are_prometheus_rule_groups_for_the_promised_alerts() -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus-alerts.yml").read_text())
    assert set(rules) == {"groups"} and rules["groups"]
    alerts = {}
    for group in rules["groups"]:
        assert set(group) <= {"name", "rules", "interval"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["expr"], str) and rule["labels"]["severity"] in ("critical", "warning")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
            assert rule["expr"].count("(") == rule["expr"].count(")")
            assert _metric_names(rule["expr"]) - _exported() == set(), rule["alert"]
            alerts[rule["alert"]] = rule
    for promised in ("WorkerDown", "CanaryFailed", "PeopleSnapshotStale", "CircuitOpen", "GraphMisconfigured"):
        assert f"Failover{promised}" in alerts


def test_json_log_lines_parse_carry_ids_and_no_contact_data(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("DEBUG", "json")
        log = logging.getLogger("failover.test")
        with logs.bound(request_id="req-12345678", activation_id=7, batch_id=42):
            log.info("sent to %s and %s", "+12025550123", "alice@personal.example", extra={"to": "+12025550199"})
        try:
            raise ValueError("Twilio refused +12025550188 with token=abc123secret")
        except ValueError:
            log.exception("send failed for bob@personal.example")
        logging.getLogger("twilio.http_client").warning("POST /Messages.json To=%2B12025550177")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    assert records[0]["request_id"] == "req-12345678" and records[0]["activation_id"] == 7
    assert records[0]["batch_id"] == 42 and records[0]["level"] == "INFO" and records[0]["logger"] == "failover.test"
    assert records[1]["request_id"] is None and "ValueError" in records[1]["exc_info"]
    text = "\n".join(lines)
    assert not re.search(r"\+1\d{10}|alice@|bob@|abc123secret", text), text
    assert "a***@personal.example" in text and "+1********23" in text


def test_sentry_events_are_scrubbed_before_they_leave() -> None:
    event = {
        "message": "could not reach +12025550123",
        "exception": {
            "values": [
                {
                    "type": "PermanentDeliveryError",
                    "value": "21211: invalid 'To' +12025550123 for carol@personal.example",
                    "stacktrace": {"frames": [{"function": "send", "vars": {"address": "+12025550123"}}]},
                }
            ]
        },
        "request": {
            "url": "https://failover.example/webhooks/twilio/inbound",
            "data": {"From": "+12025550123", "Body": "1"},
            "headers": {"Authorization": "Bearer fo_secret_token_value_123456"},
            "cookies": {"__Host-session": "abc"},
        },
        "user": {"ip_address": "203.0.113.9"},
        "breadcrumbs": {"values": [{"message": "SMS to +12025550124 api_key=SG.abcdefghij.klmnopqrst"}]},
        "extra": {"contact": "dave@personal.example"},
    }
    clean = observability.scrub_event(event)
    text = json.dumps(clean)
    assert not re.search(r"\+1\d{10}|carol@|dave@|fo_secret|SG\.abcdefghij|203\.0\.113\.9|__Host-session", text), text
    assert clean["request"]["data"] == observability.DROPPED and "user" not in clean
    assert "vars" not in clean["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert "21211" in clean["exception"]["values"][0]["value"] and clean["request"]["url"].endswith("/inbound")


@SQLITE_ONLY
def test_behind_two_trusted_proxies_the_audit_records_the_real_client(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILOVER_TRUSTED_PROXIES", "2")
    app = create_app(load_settings(), runtime=runtime, test_config={"TESTING": True})
    add_user(runtime, "olga", "operator")
    # client -> CDN -> nginx -> failover: the CDN appended the client, nginx the CDN; the first entry is forged.
    response = forwarded(app.test_client(), WRONG, "6.6.6.6, 203.0.113.9, 10.0.0.2")
    assert response.status_code == 401 and response.headers["X-Request-ID"]
    failed = [d for a, _, d in events(runtime) if a == "auth.login_failed"]
    assert [d["ip"] for d in failed] == ["203.0.113.9"]


@SQLITE_ONLY
def test_a_request_id_from_the_proxy_is_kept_and_a_bad_one_replaced(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz", headers={"X-Request-ID": "edge-0123456789"}).headers["X-Request-ID"] == (
        "edge-0123456789"
    )
    fresh = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", fresh)


def test_beat_runs_the_sweep_every_2s_with_work_and_every_idle_interval_without(tmp_path: Path) -> None:
    marker = pulse.FilePulse(tmp_path / "busy")
    entry = IdleAware(2.0, 30.0, marker.spec)
    last = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    idle = entry.is_due(last)
    assert not idle.is_due and 24 <= idle.next <= 25  # idle: 30 s after the last run
    marker.mark(60)
    busy = entry.is_due(last)
    assert busy.is_due  # work: 2 s have long passed
    copy = pickle.loads(pickle.dumps(entry))  # beat stores its schedule with pickle
    assert copy == entry and copy.is_due(last).is_due
    marker.mark(-1)
    assert not marker.busy()


@SQLITE_ONLY
def test_publishing_marks_work_and_the_follow_up_sees_open_work(runtime: Runtime) -> None:
    assert not runtime.pulse.busy()
    runtime.delivery.follow_up()  # nothing open: stays idle
    assert not runtime.pulse.busy()
    accepted, _ = runtime.activations.activate(runbook_id="exchange-outage", reason="pulse", actor="tester")
    assert accepted.batch_ids and runtime.pulse.busy()  # relayed: beat and the broker wake at once
    runtime.pulse.mark(-1)
    runtime.delivery.follow_up()  # rows still pending (no worker here): the follow-up keeps the pace up
    assert runtime.pulse.busy()


@SQLITE_ONLY
def test_beat_schedules_drills_every_minute_and_the_sweep_idle_aware(runtime: Runtime) -> None:
    schedule = create_celery(runtime).conf.beat_schedule
    assert schedule["scheduled-drills"]["task"] == "failover.tasks.scheduled_drills"
    assert isinstance(schedule["sweep"]["schedule"], IdleAware)
    assert schedule["sweep"]["schedule"].idle_s == runtime.settings.idle_interval


def test_heartbeat_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["heartbeat-check", "worker"]).exit_code == 1
    path = observability.heartbeat_file(tmp_path, "worker")
    path.parent.mkdir(parents=True)
    path.touch()
    assert runner.invoke(main, ["heartbeat-check", "worker"]).exit_code == 0
    old = time.time() - 300
    import os

    os.utime(path, (old, old))
    result = runner.invoke(main, ["heartbeat-check", "worker", "--max-age", "120"])
    assert result.exit_code == 1 and "no heartbeat for" in result.output


@pytest.mark.integration
def test_failover_web_honours_gunicorn_cmd_args_and_logs_access(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "web.log"
    process = workers.start(
        "web",
        {**env, "FAILOVER_PORT": str(port), "GUNICORN_CMD_ARGS": "--workers 2 --timeout 20"},
        log,
    )
    try:

        def answers() -> bool:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "probe-123456789"}
                )
                return urllib.request.urlopen(request, timeout=2).status == 200
            except OSError:
                return False

        workers.wait_until(answers, timeout=60, what="failover web answering", log=log)
        workers.wait_until(lambda: "rid=probe-123456789" in log.read_text(), timeout=10, what="access log", log=log)
    finally:
        workers.stop(process)
    text = log.read_text()
    assert text.count("Booting worker with pid") == 2  # GUNICORN_CMD_ARGS won over FAILOVER_WEB_WORKERS (1)
    assert re.search(r'127\.0\.0\.1 "GET /healthz" 200 \d+ \d+ms rid=probe-123456789', text)


def test_the_dockerfile_is_multi_stage_hashed_unprivileged_and_checks_health() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "AS build" in text
    assert "--require-hashes" in text and "requirements.lock" in text
    assert re.search(r"^USER \$\{UID\}:\$\{UID\}$", text, re.M) and "ARG UID=10001" in text
    assert "HEALTHCHECK" in text and "libpango-1.0-0" in text
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("worker", "beat"):
        assert f"/var/lib/failover/heartbeat/{name}" in " ".join(compose[name]["healthcheck"]["test"])


def test_settings_example_lists_the_operations_settings() -> None:
    text = (REPO / "config" / "settings.example.env").read_text()
    for name in ("FAILOVER_METRICS_TOKEN", "FAILOVER_LOG_FORMAT", "SENTRY_DSN", "FAILOVER_IDLE_INTERVAL"):
        assert f"# {name}=" in text
