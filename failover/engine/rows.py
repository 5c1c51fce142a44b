"""Small SQL helpers the tracking use cases share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_once(session: Session, model: Any, values: dict[str, Any], keys: Sequence[str]) -> bool:
    """Insert a row unless one with the same unique ``keys`` exists; True when this call inserted it.

    ``ON CONFLICT DO NOTHING`` rather than catching IntegrityError: a concurrent
    duplicate then neither aborts the caller's transaction nor needs a savepoint.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(keys))
        # RETURNING, not rowcount: SQLAlchemy does not promise an INSERT's rowcount on every driver.
        .returning(*[table.c[key] for key in keys])
    )
    return session.connection().execute(statement).first() is not None


def insert_many_once(session: Session, model: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[int]:
    """Insert the rows whose unique ``keys`` are new; the ids of those inserted.

    Every row must have the same columns. A row that repeats an earlier one's keys (in the table or in
    ``rows``) is skipped, as ``insert_once`` skips it. One statement compiled once (and cached), sent as
    SQLAlchemy's "insertmanyvalues" batches: a few round trips for hundreds of rows.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c.id)
    return [row[0] for row in session.connection().execute(statement, list(rows))]
