"""Database engine and sessions, for SQLite (embedded) and PostgreSQL (production).

Several processes (web, worker, beat) share the embedded SQLite file, so it is
opened in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail
at once with "database is locked" when another process committed in between,
whereas an immediate one waits its turn. Read-only sessions stay deferred so
console pages never queue behind senders.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from failover import datafiles

SQLITE_BUSY_TIMEOUT_S = 30


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            datafiles.private_sqlite(path)  # 0600 before SQLite creates it; its WAL and SHM files inherit that
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
        )
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (``sqlite:///...`` or kombu's ``sqla+sqlite:///...``), None in memory."""
    database = make_url(url.removeprefix("sqla+")).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see the SQLAlchemy
        # pysqlite docs, "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine per process; ``transaction()`` is one unit of work."""

    def __init__(self, url: str, *, audit_key: Any = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        # Sessions carry the audit key to failover.engine.audit, which signs the chain with it.
        info = {"audit_key": audit_key} if audit_key is not None else {}
        self._writer = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._reader = sessionmaker(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False, info=info
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A read-write unit of work: commits on success, rolls back on error."""
        with self._writer.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session. Closing it (a rollback underneath) leaves loaded objects readable."""
        session = self._reader()
        try:
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "failover:migrations")
    config.attributes["connection"] = connection
    return config


def migrate(database: Database) -> None:
    """Bring the schema to the latest revision (idempotent)."""
    from alembic import command

    with database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
