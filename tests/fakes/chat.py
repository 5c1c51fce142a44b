"""Fake chat services for Apprise: a generic JSON webhook, Mattermost incoming webhooks and ntfy, on one server.

Apprise's ``json://``, ``mmost://`` and ``ntfy://`` plugins take custom hosts
and ports, so they post here. Each POST is recorded with its path and parsed
body; ``answers`` scripts an HTTP status per path prefix (a room that refuses,
a room that is down), consumed one at a time, then 200.
"""

from __future__ import annotations

import collections
from typing import Any

from tests.fakes.server import FakeServer, Request, Response


class FakeChat(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers: dict[str, collections.deque[int]] = {}
        self.route("POST", "/", self._post)

    def answer(self, prefix: str, *statuses: int) -> None:
        self.answers.setdefault(prefix, collections.deque()).extend(statuses)

    def posts(self, prefix: str) -> list[Request]:
        """Posts that reached ``prefix`` and were accepted (2xx)."""
        with self.lock:
            return [e.request for e in self.exchanges if e.request.path.startswith(prefix) and e.status < 300]

    def _post(self, request: Request) -> Response:
        for prefix, queue in self.answers.items():
            if request.path.startswith(prefix) and queue:
                status = queue.popleft()
                return Response.json(status, {"message": "scripted", "status": status})
        if request.path.startswith("/hooks/"):  # Mattermost answers "ok" as plain text
            return Response(200, b"ok", {"Content-Type": "text/plain"})
        return Response.json(200, {"ok": True})
