"""The public fallback status page: HTML, JSON and Atom. No login, no Microsoft.

The page links to its JSON and Atom siblings by path; ``failover status
export`` sets ``STATUS_EXPORT`` so that the exported copy links to the files
beside it instead. The feed names itself by ``FAILOVER_PUBLIC_URL``, never by
the Host header a client sent.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from failover.clock import utcnow
from failover.engine.notices import public_status
from failover.web.views import runtime

bp = Blueprint("status", __name__)


def _status():  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        return public_status(session, utcnow())


@bp.get("/status")
def page():  # type: ignore[no-untyped-def]
    if current_app.config.get("STATUS_EXPORT"):
        links = {"json": "status.json", "feed": "feed.atom"}
    else:
        links = {"json": url_for("status.as_json"), "feed": url_for("status.feed")}
    response = Response(render_template("status.html", status=_status(), links=links))
    response.headers["Cache-Control"] = "public, max-age=15"
    return response


@bp.get("/status.json")
def as_json():  # type: ignore[no-untyped-def]
    response = jsonify(_status().as_json())
    response.headers["Cache-Control"] = "public, max-age=15"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/status/feed.atom")
def feed():  # type: ignore[no-untyped-def]
    status = _status()
    body = render_template(
        "feed.atom.xml",
        status=status,
        notices=status.open + status.recent,
        now=utcnow(),
        self_url=runtime().settings.public_url + url_for("status.feed").removeprefix(request.script_root),
    )
    return Response(body, mimetype="application/atom+xml")
