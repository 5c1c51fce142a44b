"""The audit chain detects an edited, removed or reordered row (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import delete, text, update

from failover.engine import audit
from failover.models import AuditEvent
from failover.runtime import Runtime


def append(runtime: Runtime, count: int) -> None:
    for i in range(count):
        with runtime.database.transaction() as session:
            audit.record(
                session,
                action="test.event",
                actor="tester",
                target_type="thing",
                target_id=i,
                details={"n": i, "note": "é ünïcode"},
            )


def verdict(runtime: Runtime) -> audit.Verdict:
    with runtime.database.reading() as session:
        return audit.verify(session)


def test_an_intact_chain_verifies(runtime: Runtime) -> None:
    append(runtime, 5)
    result = verdict(runtime)
    assert result.ok and result.checked == 5
    assert str(result) == "audit chain intact: 5 events verified"


def test_an_empty_chain_verifies(runtime: Runtime) -> None:
    assert verdict(runtime).ok


def test_an_edited_row_is_named(runtime: Runtime) -> None:
    append(runtime, 5)
    with runtime.database.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 3).values(actor="mallory"))
    result = verdict(runtime)
    assert not result.ok and result.bad_id == 3
    assert "edited" in result.reason


def test_edited_details_are_detected(runtime: Runtime) -> None:
    append(runtime, 3)
    with runtime.database.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(details={"n": 99}))
    assert verdict(runtime).bad_id == 2


def test_a_removed_row_is_named(runtime: Runtime) -> None:
    append(runtime, 5)
    with runtime.database.transaction() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == 2))
    result = verdict(runtime)
    assert not result.ok and result.bad_id == 2 and "missing" in result.reason


def test_removing_the_newest_rows_is_detected_through_the_head(runtime: Runtime) -> None:
    append(runtime, 5)
    with runtime.database.transaction() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id >= 4))
    result = verdict(runtime)
    assert not result.ok and result.bad_id == 4 and "ends early" in result.reason


def test_reordered_rows_are_detected(runtime: Runtime) -> None:
    append(runtime, 5)
    with runtime.database.transaction() as session:
        rows = {r.id: r for r in session.query(AuditEvent).filter(AuditEvent.id.in_([2, 3]))}
        fields = ("at", "actor", "action", "target_type", "target_id", "incident_id", "details", "prev_hash", "hash")
        two = {f: getattr(rows[2], f) for f in fields}
        three = {f: getattr(rows[3], f) for f in fields}
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(**three))
        session.execute(update(AuditEvent).where(AuditEvent.id == 3).values(**two))
    result = verdict(runtime)
    assert not result.ok and result.bad_id == 2


def test_concurrent_writers_never_fork_the_chain(runtime: Runtime) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            append(runtime, 15)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verdict(runtime)
    assert result.ok and result.checked == 60


def test_audit_rows_roll_back_with_the_change_they_record(runtime: Runtime) -> None:
    append(runtime, 1)
    try:
        with runtime.database.transaction() as session:
            audit.record(session, action="test.doomed", actor="tester")
            session.execute(text("SELECT * FROM no_such_table"))
    except Exception:
        pass
    result = verdict(runtime)
    assert result.ok and result.checked == 1
