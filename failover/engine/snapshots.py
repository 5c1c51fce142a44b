"""Last good configuration versions, kept in the database so that every process shares one.

``domain.lastgood`` decides what is in force while a file is broken; this
module remembers what "last good" was. Each file's text is stored when it
validates (only when it changed: the SHA-256 is compared first) and read back
only for a file that is broken now.

Why the database, not memory or the data directory: web, worker and beat
each load the files themselves, in production on several hosts, and a
process that starts while a file is broken (a worker restarted over the
weekend after Friday's typo) has nothing in memory to fall back on. The data
directory is per host and per container; the database is the one thing every
process already shares and depends on. So a good version seen by any process
is in force for all of them, and the banner says the same everywhere.

Why the source text, not the parsed objects: the text is what people wrote
and is parsed again by the code that uses it, so a stored version never ties
the database to the classes of one release. After an upgrade a version that
no longer validates is simply not used (and the banner says so). Contacts of
50,000 people are a few MB of text, written once per change.

Storing is best effort: a database that is down or not migrated yet only
means no new last good version; the files still load (and a warning is logged).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from failover.clock import utcnow
from failover.db import Database
from failover.domain.lastgood import Snapshot
from failover.models import ConfigSnapshot

log = logging.getLogger(__name__)


class Snapshots:
    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, key: str) -> Snapshot | None:
        """The last good version of one file, if any process ever saw one."""
        try:
            with self.database.reading() as session:
                row = session.get(ConfigSnapshot, key)
                return Snapshot(row.source, row.saved_at) if row is not None else None
        except SQLAlchemyError as exc:
            log.warning("cannot read the last good version of %s: %s", key, type(exc).__name__)
            return None

    def remember(self, sources: Mapping[str, str]) -> list[str]:
        """Store each source that differs from its stored version; returns the keys written."""
        if not sources:
            return []
        digests = {key: hashlib.sha256(text.encode()).hexdigest() for key, text in sources.items()}
        try:
            with self.database.transaction() as session:
                stored = dict(
                    session.execute(
                        select(ConfigSnapshot.key, ConfigSnapshot.sha256).where(ConfigSnapshot.key.in_(list(sources)))
                    ).all()
                )
                changed = sorted(key for key, digest in digests.items() if stored.get(key) != digest)
                now = utcnow()
                for key in changed:
                    session.merge(ConfigSnapshot(key=key, sha256=digests[key], source=sources[key], saved_at=now))
        except SQLAlchemyError as exc:  # another process stored the same version at the same moment, or no table yet
            log.warning("cannot store last good config versions: %s", type(exc).__name__)
            return []
        return changed
