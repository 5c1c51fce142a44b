"""The status page's directory target: files a web server, a git pages push or rsync take from there.

Each file is written beside its place and renamed over it (a reader gets the
old file or the new one, never half of one); ``index.html`` is renamed last.
Files of earlier snapshots that are gone from this one are removed, but only
those failover wrote itself (listed in ``.failover-snapshot.json``): an
operator's own files in the directory are left alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from failover.channels.s3_publish import INDEX, PublishError, SnapshotFile

MANIFEST = ".failover-snapshot.json"


class DirectoryPublisher:
    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)

    def publish(self, files: Sequence[SnapshotFile]) -> dict[str, int]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            before = self._manifest()
            written = 0
            for file in sorted(files, key=lambda f: f.path == INDEX):
                target = self.root / file.path
                if not target.resolve().is_relative_to(self.root.resolve()):
                    raise PublishError(f"{file.path}: outside the directory", code="path")
                if target.is_file() and target.read_bytes() == file.body:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{target.name}.tmp")
                temporary.write_bytes(file.body)
                os.replace(temporary, target)
                written += 1
            now = {f.path for f in files}
            stale = sorted(before - now)
            for name in stale:
                (self.root / name).unlink(missing_ok=True)
            (self.root / MANIFEST).write_text(json.dumps(sorted(now)) + "\n")
        except OSError as exc:
            raise PublishError(f"{self.root}: {exc.strerror or exc}", code="os") from None
        return {"written": written, "unchanged": len(files) - written, "deleted": len(stale)}

    def _manifest(self) -> set[str]:
        try:
            names = json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str) and ".." not in n.split("/")}
