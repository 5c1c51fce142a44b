"""Alembic environment: run against the connection failover hands over."""

from __future__ import annotations

from alembic import context

from failover.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` run by hand with -x url=...
        from failover.db import make_engine

        url = context.get_x_argument(as_dictionary=True).get("url")
        if not url:
            raise SystemExit("pass -x url=DATABASE_URL")
        with make_engine(url).connect() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
