"""A request id on every log line of a request (and on the answer, as X-Request-ID).

A well-formed X-Request-ID from the proxy in front is kept, so its access log
and ours can be joined; anything else gets a fresh id.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from failover import logs

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def init_app(app: Flask) -> None:
    @app.before_request
    def _bind() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _SANE.match(given) else uuid.uuid4().hex[:16]
        logs.clear()
        logs.bind(request_id=g.request_id, activation_id=(request.view_args or {}).get("activation_id"))

    @app.after_request
    def _answer(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        logs.clear()
