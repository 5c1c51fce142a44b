"""The fault-injection rig: its own PostgreSQL cluster and Redis server, real worker and beat processes.

Everything a fault test breaks (the database, the broker, a worker) belongs to
this rig alone, so stopping it disturbs no other test.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
import yaml
from sqlalchemy import func, select

from failover.celery_app import create_celery
from failover.db import Database, migrate
from failover.engine import audit
from failover.models import AuditEvent, Delivery
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import PROVIDER_VARIABLES, make_people, provider_env, write_config
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.integration import workers
from tests.services import PostgresCluster, RedisServer

SMS_ONLY = {
    "id": "sms-only",
    "title": "Everyone by SMS",
    "trigger": {"services": ["Exchange Online"], "activation": "manual"},
    "steps": [
        {
            "channel": "sms",
            "to": ["group:all-staff"],
            "text": "Email is down. Use SMS. Reply ACK.",
            "fallback": [{"channel": "email", "subject": "Email is down"}],
        }
    ],
}


@pytest.fixture(scope="module")
def fault_pg() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster().init().start()
    template = "faults_template"
    database = Database(cluster.create_database(template))
    migrate(database)
    database.dispose()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def fault_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@dataclass
class Rig:
    runtime: Runtime
    env: dict[str, str]
    twilio: FakeTwilio
    sendgrid: FakeSendGrid
    tmp: Path
    redis: RedisServer
    pg: PostgresCluster
    processes: list[Popen[bytes]] = field(default_factory=list)
    numbers: set[str] = field(default_factory=set)

    @property
    def log(self) -> Path:
        return self.tmp / "processes.log"

    def worker(self, name: str) -> Popen[bytes]:
        process = workers.start("worker", self.env, self.log, "--hostname", f"{name}@faults")
        self.processes.append(process)
        return process

    def beat(self) -> Popen[bytes]:
        process = workers.start("beat", self.env, self.log)
        self.processes.append(process)
        return process

    def activate(self, runbook: str = "sms-only") -> tuple[int, bool]:
        accepted, broker_ok = self.runtime.activations.activate(runbook_id=runbook, reason="fault test", actor="tester")
        return accepted.activation_id, broker_ok

    def wait_until_settled(self, timeout: float = 180) -> None:
        workers.wait_until(
            lambda: workers.open_rows(self.runtime) == 0, timeout=timeout, what="every ledger row final", log=self.log
        )

    def statuses(self) -> Counter[str]:
        with self.runtime.database.reading() as session:
            return Counter(dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()))

    def errors(self) -> Counter[tuple[str, str | None]]:
        with self.runtime.database.reading() as session:
            return Counter(tuple(row) for row in session.execute(select(Delivery.status, Delivery.last_error)))

    def reconciled_found(self) -> int:
        with self.runtime.database.reading() as session:
            events = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "delivery.reconciled"))
            return sum(1 for details in events if details.get("found"))

    def assert_everyone_reached_exactly_once(self) -> None:
        """From the fake's own records: one message per number, none lost; ledger and audit agree."""
        received = self.twilio.sent_to()
        assert set(received) == self.numbers, f"lost: {len(self.numbers - set(received))}; ledger {self.errors()}"
        doubled = {n: c for n, c in received.items() if c > 1}
        assert not doubled, f"{len(doubled)} recipient(s) got duplicates"
        with self.runtime.database.reading() as session:
            rows = list(
                session.execute(
                    select(Delivery.id, Delivery.status, Delivery.provider_id).where(Delivery.channel == "sms")
                )
            )
            assert {status for _, status, _ in rows} == {"sent"}
            fake_sids = {m["sid"] for m in self.twilio.messages}
            assert {sid for _, _, sid in rows} == fake_sids  # every sid the fake issued is on exactly one row
            events = session.execute(
                select(AuditEvent.target_id, AuditEvent.action, AuditEvent.details).where(
                    AuditEvent.action.in_(["delivery.sent", "delivery.reconciled"])
                )
            ).all()
            settled = {
                target for target, action, details in events if action == "delivery.sent" or details.get("found")
            }
            assert settled == {str(row_id) for row_id, _, _ in rows}
            assert audit.verify(session).ok


@pytest.fixture
def rig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_pg: PostgresCluster, fault_redis: RedisServer
) -> Iterator[Rig]:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if fault_redis.process is None:  # a test stopped it
        fault_redis.start()
    people = make_people(0)
    config, books = write_config(tmp_path, people)
    (books / "sms-only.yaml").write_text(yaml.safe_dump(SMS_ONLY))
    database = f"f_{uuid.uuid4().hex[:10]}"
    twilio, sendgrid = FakeTwilio(), FakeSendGrid()
    twilio.start()
    sendgrid.start()
    fault_redis_client_flush(fault_redis)
    env = {
        "FAILOVER_DATA_DIR": str(tmp_path / "var"),
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "FAILOVER_SECRET_KEY": "fault-tests",
        "FAILOVER_AUDIT_KEY": "fault-tests-audit-key-0123456789abcdef",
        "FAILOVER_DATABASE_URL": fault_pg.create_database(database, template="faults_template"),
        "FAILOVER_BROKER_URL": fault_redis.url,
        "FAILOVER_SENDING_TIMEOUT": "3",
        "FAILOVER_REPUBLISH_AFTER": "10",  # a killed worker's reserved tasks count as lost after 10 s
        "FAILOVER_WORKER_CONCURRENCY": "2",
        "FAILOVER_LOG_LEVEL": "WARNING",
        **provider_env(twilio, sendgrid),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    create_celery(runtime)
    rig = Rig(runtime, env, twilio, sendgrid, tmp_path, fault_redis, fault_pg)
    yield rig
    for process in rig.processes:
        workers.stop(process)
    runtime.close()
    twilio.stop()
    sendgrid.stop()
    if fault_pg_is_up(fault_pg):
        fault_pg.drop_database(database)


def with_people(rig: Rig, count: int) -> None:
    """Replace the contacts with ``count`` people (all in all-staff)."""
    people = make_people(count)
    write_config(rig.tmp, people)
    rig.numbers = {str(p["phone"]) for p in people}


def fault_redis_client_flush(server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()


def fault_pg_is_up(cluster: PostgresCluster) -> bool:
    import psycopg

    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True
