"""Last good configuration: what is in force while a file on disk is broken.

Prometheus' rule (STYLE.md #15): a reload that fails keeps the previous
configuration and says so. Each configuration file - contacts.yaml,
detection.yaml, every runbook, every template - is judged on its own. A file
that validates is in force as it is and becomes its own last good version; a
broken one is reported with file:line while its last good version, if one
was ever seen, stays in force. Only a broken file that never had a good
version is left out, and that is said too.

Pure: the caller passes a ``LastGood`` lookup (``engine.snapshots`` keeps the
versions in the database, shared by every process) and stores the sources
that validated (``good``) for next time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from failover.errors import Problem

CURRENT, LAST_GOOD, NONE = "current", "last good", "none"


@dataclass(frozen=True)
class Snapshot:
    """The text of a file as it was when it last validated."""

    text: str
    saved_at: dt.datetime | None = None


LastGood = Callable[[str], "Snapshot | None"]


def nothing(_key: str) -> Snapshot | None:
    """No last good versions: what ``runbooks check`` judges, the files alone."""
    return None


@dataclass(frozen=True)
class Broken:
    """One file that does not load as it is, and what is in force instead."""

    key: str  # config/contacts.yaml, config/detection.yaml, runbooks/<file>, templates/<name>
    file: str  # as people typed it (relative to the working directory when inside it)
    problems: tuple[Problem, ...]
    in_force: str  # LAST_GOOD | NONE
    saved_at: dt.datetime | None = None
    runbook_id: str | None = None  # for a runbook file: the runbook its last good version defines

    @property
    def kind(self) -> str:
        return self.key.partition("/")[0]

    def outcome(self) -> str:
        """What this means, in a sentence for the banner, the log and the CLI."""
        if self.in_force == LAST_GOOD:
            saved = f" (saved {self.saved_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)" if self.saved_at else ""
            what = f"runbook {self.runbook_id}" if self.runbook_id else "this file"
            return f"the last good version of {what}{saved} is in force until the file is fixed"
        consequence = {
            "runbooks": "the runbook is unavailable",
            "config": "nothing can be sent" if self.key.endswith("contacts.yaml") else "nothing is watched",
            "templates": "runbooks that use it are unavailable",
        }.get(self.kind, "it is ignored")
        return f"not loaded, and no last good version is known: {consequence}"
