"""Where audit checkpoints go: places the database's writer cannot change.

A :class:`Sink` takes one signed :class:`~failover.engine.audit.Checkpoint`
and puts it somewhere outside the database: :class:`LogSink` (the process log,
shipped wherever logs go), :class:`DirectorySink` (an append-only JSON-lines
file: the data dir by default, or the directory the status page is exported
to), :class:`EmailSink` (the day's first checkpoint to an address outside
Microsoft 365). Another kind of place, such as an S3 bucket, is one more class
with a ``write`` method. ``failover audit verify`` reads the files back
(:func:`read_file`) and compares the chain with the newest checkpoint of each.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from failover import datafiles
from failover.engine.audit import Checkpoint
from failover.errors import DeliveryError

log = logging.getLogger("failover.audit.checkpoint")

FILE_NAME = "audit-checkpoints.jsonl"


class AnchorError(Exception):
    """A sink could not store a checkpoint; the others still get it."""


class Sink(Protocol):
    """One place outside the database that keeps checkpoints. ``write`` raises AnchorError when it cannot.

    A sink with ``daily = True`` gets only the first checkpoint of each UTC day.
    """

    @property
    def name(self) -> str: ...

    def write(self, checkpoint: Checkpoint) -> None: ...


class LogSink:
    name = "log"

    def write(self, checkpoint: Checkpoint) -> None:
        log.info("audit checkpoint %s", json.dumps(checkpoint.as_json(), sort_keys=True))


@dataclass
class DirectorySink:
    """Appends each checkpoint as one JSON line to ``<directory>/audit-checkpoints.jsonl``."""

    directory: Path
    mode: int = 0o600  # the data dir's copy is private; a published copy may be 0o644

    @property
    def name(self) -> str:
        return f"directory {self.directory}"

    @property
    def path(self) -> Path:
        return self.directory / FILE_NAME

    def write(self, checkpoint: Checkpoint) -> None:
        line = json.dumps(checkpoint.as_json(), sort_keys=True) + "\n"
        try:
            if not self.directory.exists():
                datafiles.private_dir(self.directory)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.mode)
            with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise AnchorError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc


@dataclass
class EmailSink:
    """Mails checkpoints (``send(to, subject, body)`` raises DeliveryError); ``daily``: the day's first only."""

    to: str
    send: Callable[[str, str, str], None]

    name = "email"
    daily = True

    def write(self, checkpoint: Checkpoint) -> None:
        day = checkpoint.at.strftime("%Y-%m-%d")
        body = (
            "failover's audit log, as verified at the time below. Keep this message: `failover audit verify "
            "--checkpoints FILE` (with this JSON saved to FILE) proves that no event up to it was dropped or "
            "rewritten since.\n\n" + json.dumps(checkpoint.as_json(), sort_keys=True) + "\n"
        )
        try:
            self.send(self.to, f"failover audit checkpoint {day}: {checkpoint.seq} events", body)
        except DeliveryError as exc:
            raise AnchorError(f"cannot e-mail the checkpoint: {exc}") from exc


@dataclass(frozen=True)
class Read:
    """The checkpoints found in one file, and why any line was not one."""

    checkpoints: list[Checkpoint]
    problems: list[str]

    @property
    def newest(self) -> Checkpoint | None:
        return max(self.checkpoints, key=lambda c: c.seq, default=None)


def read_file(path: Path) -> Read:
    """Checkpoints from a JSON-lines file or a single JSON object (a saved e-mail, a published copy)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Read([], [f"{path}: cannot read: {exc}"])
    stripped = text.strip()
    lines = [stripped] if stripped.startswith("{") and "\n" not in stripped else text.splitlines()
    found, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_json(json.loads(line)))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
    return Read(found, problems)
