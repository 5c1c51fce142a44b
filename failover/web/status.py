"""The public fallback status page: HTML, JSON and Atom. No login, no Microsoft."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, url_for

from failover.clock import utcnow
from failover.engine.notices import public_status
from failover.web.views import runtime

bp = Blueprint("status", __name__)


def _status():  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        return public_status(session, utcnow())


@bp.get("/status")
def page():  # type: ignore[no-untyped-def]
    response = Response(render_template("status.html", status=_status()))
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
        self_url=url_for("status.feed", _external=True),
    )
    return Response(body, mimetype="application/atom+xml")
