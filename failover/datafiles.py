"""The data directory's files are the service user's alone: directories 0700, files 0600.

The SQLite database holds password hashes and second-factor secrets, the key
files sign sessions and the audit chain: none of it is for other local users.
SQLite creates a database's ``-wal`` and ``-shm`` files with the database
file's own mode, so creating the database 0600 before SQLite opens it covers
all three. A directory that already exists is never changed (it may be shared,
such as ``/srv``); one that others can read is reported instead.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) mode 0700; warn when an existing one is open to others."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    elif path.is_dir() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by other users: keep the data directory private (chmod 700)", path)
    return path


def private_file(path: Path) -> Path:
    """Create an empty ``path`` 0600 unless it exists; an existing file of ours is narrowed to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _narrow(path)
    return path


def private_sqlite(path: Path) -> None:
    """A SQLite database (and its WAL, shared-memory and journal files) readable by this user only."""
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        _narrow(path.with_name(path.name + suffix))


def secret(path: Path, make: Callable[[], str]) -> str:
    """A secret generated once and kept in ``path`` (0600); when processes race, the first one's wins.

    The value is written to a private temporary file and linked into place, so
    nobody ever reads a half-written secret or a file that was open to others.
    """
    if not path.exists():
        private_dir(path.parent)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(make() + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: use its value
        finally:
            temporary.unlink()
    _narrow(path)
    return path.read_text().strip()


def _narrow(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(mode & 0o700)
