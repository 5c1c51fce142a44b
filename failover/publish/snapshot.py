"""A complete static snapshot of the status page: every file, its type and how long it may be cached.

Links are relative, so the set works from any bucket, prefix or directory.
``index.html`` is the entry point and is written last by every target.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from failover.domain import statuspage as sp
from failover.publish import render

INDEX = "index.html"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".svg": "image/svg+xml",
    ".js": "text/javascript; charset=utf-8",
}
# Short for what changes during an incident; readers and CDNs then see an update within a minute.
CACHE = {".js": "public, max-age=300", ".svg": "public, max-age=60"}
DEFAULT_CACHE = "public, max-age=30, must-revalidate"


@dataclass(frozen=True)
class File:
    path: str  # relative, "/"-separated
    body: bytes
    content_type: str
    cache_control: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _file(path: str, body: bytes) -> File:
    suffix = "." + path.rsplit(".", 1)[-1]
    return File(path, body, TYPES[suffix], CACHE.get(suffix, DEFAULT_CACHE))


def build(view: sp.PageView, legacy: dict[str, Any]) -> list[File]:
    """Every file of the page; ``legacy`` is /status.json's own shape (engine.notices.public_status)."""
    base = view.public_url.rstrip("/")
    links = render.Links(static=True, subscribe=f"{base}/status/subscribe")
    files = [
        _file("status.js", render.script().encode()),
        _file("status.json", render.dumps(legacy)),
        _file("badge.svg", render.badge(view).encode()),
        _file("feed.atom", render.feed(view, links, kind="atom", self_url=f"{base}/status/feed.atom").encode()),
        _file("feed.rss", render.feed(view, links, kind="rss", self_url=f"{base}/status/feed.rss").encode()),
    ]
    for name, data in render.v2(view).items():
        files.append(_file(f"api/v2/{name}", render.dumps(data)))
    for component in view.components:
        for kind in ("atom", "rss"):
            url = f"{base}/status/components/{component.id}/feed.{kind}"
            body = render.feed(view, links, kind=kind, self_url=url, component=component)
            files.append(_file(f"components/{component.id}.{kind}", body.encode()))
    files.append(_file(INDEX, render.html(view, links).encode()))  # last: the entry point
    return files
