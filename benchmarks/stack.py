"""A whole failover installation for one measurement: database, broker, workers, beat, config.

``production``: PostgreSQL and Redis (started once per benchmark run with
tests/services.py; every installation gets a fresh database copied from a
migrated template and an emptied Redis), two ``failover worker`` processes
and one ``failover beat``. ``embedded``: SQLite and the kombu SQLAlchemy
broker in a fresh data directory, one worker and one beat. The activating
side is this process: ``Installation.activate`` calls ``Runtime.activations.activate``,
the use case that the console's confirm button (and the API of issue 4) run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from benchmarks import procstats
from benchmarks.fakes import ProviderFakes
from failover.celery_app import create_celery
from failover.db import Database, migrate
from failover.models import Activation as ActivationRow
from failover.models import Delivery, Incident, WatchedService, WatchHead
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import PROVIDER_VARIABLES, make_people
from tests.services import PostgresCluster, RedisServer, free_port

REPO = Path(__file__).resolve().parents[1]
MODES = ("production", "embedded")
WORKERS = {"production": 2, "embedded": 1}
GROUP = "all-staff"
SMS_TEXT = (
    "{{ incident.title }}: Outlook/Exchange email is failing. Do not rely on email. "
    "Updates by SMS and on the status page. Reply ACK to confirm."
)
# One text for everyone, so that recipients share SendGrid requests of 1000 (a text that names the
# person would give every recipient a batch and a request of their own).
EMAIL_TEXT = (
    "Hello,\n\nEmail is down: {{ incident.title }}.\n"
    "Do not rely on Outlook until the all-clear. Updates follow by SMS and on the status page.\n"
)
RUNBOOKS: dict[str, dict[str, Any]] = {
    "bench": {
        "id": "bench",
        "title": "Benchmark - everyone by SMS and email",
        "trigger": {"services": ["Exchange Online"], "activation": "manual"},
        "steps": [
            {"channel": "sms", "to": [f"group:{GROUP}"], "text": SMS_TEXT},
            {"channel": "email", "to": [f"group:{GROUP}"], "subject": "Email outage: read this", "text": EMAIL_TEXT},
        ],
    },
    "bench-sms": {
        "id": "bench-sms",
        "title": "Benchmark - everyone by SMS",
        "trigger": {"services": ["Exchange Online"], "activation": "manual"},
        "steps": [{"channel": "sms", "to": [f"group:{GROUP}"], "text": SMS_TEXT}],
    },
}

WATCHED = "Exchange Online"
# What the watcher fires in the Graph flip measurement: the only runbook of that installation, so that no
# manual runbook naming Exchange Online leaves an activation awaiting approval at each incident.
GRAPH_RUNBOOKS: dict[str, dict[str, Any]] = {
    "bench-graph": {
        "id": "bench-graph",
        "title": "Benchmark - everyone by SMS when the watcher confirms an Exchange Online outage",
        "trigger": {"services": [WATCHED], "activation": "auto"},
        "steps": [{"channel": "sms", "to": [f"group:{GROUP}"], "text": SMS_TEXT}],
    },
}


def write_config(directory: Path, people: int, runbooks: Mapping[str, dict[str, Any]] = RUNBOOKS) -> tuple[Path, Path]:
    """contacts.yaml with ``people`` people (tests.conftest.make_people) and the bench runbooks."""
    config, runbooks_dir = directory / "config", directory / "runbooks"
    if (config / "contacts.yaml").exists():
        return config, runbooks_dir
    config.mkdir(parents=True, exist_ok=True)
    runbooks_dir.mkdir(parents=True, exist_ok=True)
    contacts = {
        "groups": {"oncall": {"description": "IT on call"}, GROUP: {"description": "Everyone"}},
        "people": make_people(people, groups=("oncall", GROUP)),
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C dumper writes 50,000 people in a second
    (config / "contacts.yaml").write_text(yaml.dump(contacts, Dumper=dumper, sort_keys=False))
    for name, runbook in runbooks.items():
        (runbooks_dir / f"{name}.yaml").write_text(yaml.safe_dump(runbook, sort_keys=False))
    return config, runbooks_dir


def write_detection(
    config: Path, *, poll_interval: float, max_incidents_per_hour: int, recover_hold: float = 1.0
) -> dict[str, Any]:
    """detection.yaml for the Graph flip: Exchange Online watched through Graph only (no probes), polled fast.

    Graph's confirming issue opens an incident at once (no hold). ``recover_hold`` and a 1 s re-evaluation
    let the all-clear come soon after Graph flips back, and ``max_incidents_per_hour`` (per service) must
    allow every flip of the run its own incident. Returns what it wrote.
    """
    detection = {
        "watch": [WATCHED],
        "graph": {"poll_interval": f"{poll_interval:g}s", "timeout": "5s"},
        "confirm": {
            "recover_hold": f"{recover_hold:g}s",
            "evaluate_interval": "1s",
            "max_incidents_per_hour": max_incidents_per_hour,
        },
    }
    (config / "detection.yaml").write_text(yaml.safe_dump(detection, sort_keys=False))
    return detection


# Celery's "Task <name>[<id>] succeeded in <s>s: <result>" lines.
_SUCCEEDED = re.compile(
    r"Task failover\.tasks\.(?P<task>send_batch|sweep)\[[^\]]+\] succeeded in (?P<seconds>[\d.e-]+)s: "
    r"(?:\{'republished': (?P<republished>\d+))?"
)


class Services:
    """PostgreSQL and Redis for the production mode, started on first use and shared by installations.

    A test passes its session's servers (and their migrated template database) in; those are left running.
    """

    def __init__(
        self, *, postgres: PostgresCluster | None = None, redis: RedisServer | None = None, template: str | None = None
    ) -> None:
        self.postgres = postgres
        self.redis = redis
        self.template = template or "bench_template"
        self._migrated = template is not None
        self._started: list[PostgresCluster | RedisServer] = []  # only these are stopped by close()

    def database(self, name: str) -> str:
        if self.postgres is None:
            self.postgres = PostgresCluster().init().start()
            self._started.append(self.postgres)
        if not self._migrated:
            template = Database(self.postgres.create_database(self.template))
            migrate(template)
            template.dispose()
            self._migrated = True
        return self.postgres.create_database(name, template=self.template)

    def drop(self, name: str) -> None:
        if self.postgres is not None:
            self.postgres.drop_database(name)

    def broker(self) -> str:
        if self.redis is None:
            self.redis = RedisServer().start()
            self._started.append(self.redis)
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            client.flushdb()  # no task of an earlier installation may reach this one's workers
        finally:
            client.close()
        return self.redis.url

    def server_pids(self) -> list[int]:
        """Root pids of the servers, for CPU accounting (the postmaster forks its backends)."""
        pids = []
        if self.postgres is not None:
            pid_file = self.postgres.data / "postmaster.pid"
            if pid_file.exists():
                pids.append(int(pid_file.read_text().split()[0]))
        if self.redis is not None and self.redis.process is not None:
            pids.append(self.redis.process.pid)
        return pids

    def close(self) -> None:
        for server in reversed(self._started):
            server.close()
        self._started.clear()
        self.redis = self.postgres = None


@dataclass
class Activation:
    started: float  # time.time() just before Runtime.activations.activate
    accepted: float  # when it returned: ledger committed, batches published
    activation_id: int
    batches: int
    counts: dict[str, int]
    broker_ok: bool
    cpu_s: float  # CPU this process spent accepting it


@dataclass
class Installation:
    mode: str
    root: Path
    config: tuple[Path, Path]
    fakes: ProviderFakes
    services: Services
    workers: int | None = None
    concurrency: int | None = None
    beat: bool = True
    web: bool = False  # also the production web (``failover web``: gunicorn), at ``public_url``
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    runtime: Runtime | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.name = f"b_{uuid.uuid4().hex[:10]}"
        self.dir = self.root / self.name
        self._celery: Any = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> Installation:
        self.dir.mkdir(parents=True)
        config, runbooks = self.config
        env = {
            "FAILOVER_DATA_DIR": str(self.dir / "var"),
            "FAILOVER_CONFIG_DIR": str(config),
            "FAILOVER_RUNBOOKS_DIR": str(runbooks),
            "FAILOVER_SECRET_KEY": "bench-secret-key",
            "FAILOVER_AUDIT_KEY": "bench-audit-key-0123456789abcdef01234567",
            "FAILOVER_LOG_LEVEL": "INFO",
            **self.fakes.env(),
            **self.extra_env,
        }
        if self.mode == "production":
            env["FAILOVER_DATABASE_URL"] = self.services.database(self.name)
            env["FAILOVER_BROKER_URL"] = self.services.broker()
        if self.concurrency is not None:
            env["FAILOVER_WORKER_CONCURRENCY"] = str(self.concurrency)
        if self.web:  # providers' callbacks reach this gunicorn, signed for this address
            self.web_port = free_port()
            env["FAILOVER_PORT"] = str(self.web_port)
            env.setdefault("FAILOVER_PUBLIC_URL", f"http://127.0.0.1:{self.web_port}")
        self.env = env
        explicit: dict[str, Any] = dict.fromkeys(PROVIDER_VARIABLES)
        self.runtime = Runtime(load_settings(**{**explicit, **env}))
        if self.mode == "embedded":
            migrate(self.runtime.database)
        self._celery = create_celery(self.runtime)
        # As deployed, the web process has loaded the config (contacts.yaml into the people table) before an
        # outage; workers that start after it read only the file's groups, not its people (issue 17, memory).
        self.runtime.config.catalog()
        for index in range(self.workers or WORKERS[self.mode]):
            self._spawn(f"worker-{index + 1}", "worker", "--hostname", f"w{index + 1}-{self.name}@%h")
        if self.beat:
            self._spawn("beat", "beat")
        if self.web:
            self._spawn("web", "web")
            self.wait_for(lambda: _listening(self.web_port), timeout=60, what="gunicorn listening")
        for name in self.processes:
            if name.startswith("worker"):
                self.wait_for(lambda n=name: "ready." in self.log(n), timeout=60, what=f"{name} ready")
        return self

    @property
    def public_url(self) -> str:
        return self.env["FAILOVER_PUBLIC_URL"]

    def web_pids(self) -> list[int]:
        """gunicorn's arbiter and its workers (for CPU accounting)."""
        web = self.processes.get("web")
        return [web.pid] if web is not None else []

    def _spawn(self, name: str, *argv: str) -> None:
        base = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES and not k.startswith("FAILOVER_")}
        with (self.dir / f"{name}.log").open("ab") as handle:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "failover", *argv],
                env={**base, **self.env, "PYTHONUNBUFFERED": "1"},
                cwd=REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._celery is not None:
            self._celery.close()
        if self.runtime is not None:
            self.runtime.close()
        if self.mode == "production":
            self.services.drop(self.name)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Installation:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the measurements use -----------------------------------------------------

    def activate(self, runbook_id: str = "bench", reason: str = "benchmark") -> Activation:
        assert self.runtime is not None
        cpu = time.thread_time()
        started = time.time()
        accepted, broker_ok = self.runtime.activations.activate(runbook_id=runbook_id, reason=reason, actor="bench")
        done = time.time()
        return Activation(
            started,
            done,
            accepted.activation_id,
            len(accepted.batch_ids),
            dict(accepted.counts),
            broker_ok,
            time.thread_time() - cpu,
        )

    def open_rows(self) -> int:
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            query = select(func.count()).select_from(Delivery)
            query = query.where(Delivery.status.in_(("pending", "sending", "in_doubt")))
            return int(session.scalar(query) or 0)

    def statuses(self) -> dict[str, int]:
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            rows = session.execute(
                select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)
            )
            return {f"{channel}:{status}": int(count) for channel, status, count in rows}

    def graph_ok(self) -> bool:
        """The watcher's last Graph poll succeeded (token from Entra, issues and overviews read)."""
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            head = session.get(WatchHead, 1)
            return head is not None and head.graph_state == "ok"

    def incidents(self) -> list[dict[str, Any]]:
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            rows = session.scalars(select(Incident).order_by(Incident.id))
            return [
                {"id": i.id, "state": i.state, "source": i.source, "resolved_by": i.resolved_by, "ms": i.ms_issue_ids}
                for i in rows
            ]

    def activations(self) -> dict[str, int]:
        """Activations by runbook and phase ("bench-graph:steps": 10)."""
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            rows = session.execute(
                select(ActivationRow.runbook_id, ActivationRow.phase, func.count()).group_by(
                    ActivationRow.runbook_id, ActivationRow.phase
                )
            )
            return {f"{runbook}:{phase}": int(count) for runbook, phase, count in rows}

    def service_phase(self, service: str) -> str | None:
        """A watched service's phase in the detector (operational, suspected, confirmed, recovering, resolved)."""
        assert self.runtime is not None
        with self.runtime.database.reading() as session:
            row = session.get(WatchedService, service)
            return row.phase if row is not None else None

    def worker_pids(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith("worker")]

    def worker_cpu(self) -> float:
        return sum(procstats.cpu_seconds(pid) for pid in self.worker_pids())

    def beat_cpu(self) -> float:
        beat = self.processes.get("beat")
        return procstats.cpu_seconds(beat.pid) if beat else 0.0

    def server_cpu(self) -> float:
        return (
            sum(procstats.tree_cpu_seconds(pid) for pid in self.services.server_pids())
            if self.mode == "production"
            else 0.0
        )

    def worker_peak_mib(self) -> list[float]:
        return [round(procstats.peak_rss_mib(pid) or 0.0, 1) for pid in self.worker_pids()]

    def log_sizes(self) -> dict[str, int]:
        return {name: (self.dir / f"{name}.log").stat().st_size for name in self.processes}

    def task_stats(self, since: dict[str, int]) -> dict[str, Any]:
        """What the workers' logs say happened after ``since`` (from log_sizes): tasks run, sweep republishes."""
        stats: dict[str, Any] = {"send_batch_tasks": 0, "sweep_tasks": 0, "sweep_s": 0.0, "republished": 0}
        for name in self.processes:
            if not name.startswith("worker"):
                continue
            with (self.dir / f"{name}.log").open("rb") as handle:
                handle.seek(since.get(name, 0))
                text = handle.read().decode(errors="replace")
            for match in _SUCCEEDED.finditer(text):
                if match["task"] == "send_batch":
                    stats["send_batch_tasks"] += 1
                else:
                    stats["sweep_tasks"] += 1
                    stats["sweep_s"] += float(match["seconds"])
                    stats["republished"] += int(match["republished"] or 0)
        stats["sweep_s"] = round(stats["sweep_s"], 2)
        return stats

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "".join(self.log(name) for name in self.processes)

    def wait_for(self, condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.1) -> float:
        """Poll until ``condition`` holds; returns time.time() when it did. Fails with the logs' tails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return time.time()
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}\n{self.log(name)[-3000:]}")
            time.sleep(every)
        tails = "\n".join(f"--- {name} ---\n{self.log(name)[-2000:]}" for name in self.processes)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
