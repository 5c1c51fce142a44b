"""What one TTN run asks of the shared servers: PostgreSQL transactions and row writes, Redis commands, broker tasks.

Sampled before the activation and after the last row is final (production mode only: embedded has no
servers of its own), so that the README's capacity model can say which server saturates next when more
worker hosts, a larger provider allowance or more sender numbers make the workers faster. The benchmark
process itself polls the ledger every 0.25 s (a few read transactions per second) and asks Redis twice:
noise below 1 % at these rates. Redis counts the commands a Lua script runs as well as its EVALSHA, and
the broker's LPUSH / BRPOP share names with the guard's wake-ups: broker tasks are counted from the workers'
logs instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from benchmarks.stack import Installation

# pg_stat_database: committed transactions and rows written (a claim or a recorded result is an UPDATE,
# the ledger's rows are COPYed in: inserts).
PG_COLUMNS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched", "blks_hit")


@dataclass(frozen=True)
class Counters:
    at: float
    postgres: dict[str, int] = field(default_factory=dict)
    redis: dict[str, int] = field(default_factory=dict)  # calls per command


def sample(inst: Installation) -> Counters | None:
    """The servers' cumulative counters now; None in embedded mode (SQLite and the broker live in the worker)."""
    if inst.mode != "production" or inst.runtime is None or inst.services.redis is None:
        return None
    import redis

    with inst.runtime.database.engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = connection.execute(
            text(f"SELECT {', '.join(PG_COLUMNS)} FROM pg_stat_database WHERE datname = current_database()")
        ).one()
        postgres = {name: int(value or 0) for name, value in zip(PG_COLUMNS, row, strict=True)}
    client = redis.Redis.from_url(inst.services.redis.url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return Counters(time.time(), postgres, calls)


def settle(inst: Installation) -> None:
    """Backends report their statistics when they go idle (at least once a second): wait for the last ones."""
    if inst.mode == "production":
        time.sleep(1.2)


def delta(before: Counters | None, after: Counters | None, *, seconds: float, messages: int) -> dict[str, Any] | None:
    """Per-run rates: over ``seconds`` (the TTN) and per message."""
    if before is None or after is None or seconds <= 0:
        return None
    pg = {name: after.postgres[name] - before.postgres.get(name, 0) for name in after.postgres}
    commands = {name: calls - before.redis.get(name, 0) for name, calls in after.redis.items()}
    commands = {name: calls for name, calls in commands.items() if calls > 0}
    redis_total = sum(commands.values())
    written = pg["tup_inserted"] + pg["tup_updated"] + pg["tup_deleted"]
    top = sorted(commands.items(), key=lambda item: -item[1])[:8]
    return {
        "seconds": round(seconds, 3),
        "messages": messages,
        "pg_commits": pg["xact_commit"],
        "pg_commits_per_s": round(pg["xact_commit"] / seconds, 1),
        "pg_commits_per_1000_messages": round(pg["xact_commit"] / messages * 1000, 1),
        "pg_rows_written": written,
        "pg_rows_written_per_s": round(written / seconds, 1),
        "pg_rows_updated": pg["tup_updated"],
        "pg_rows_inserted": pg["tup_inserted"],
        "pg_rollbacks": pg["xact_rollback"],
        "redis_commands": redis_total,
        "redis_commands_per_s": round(redis_total / seconds, 1),
        "redis_commands_per_message": round(redis_total / messages, 2),
        "redis_top": {name: calls for name, calls in top},
    }
