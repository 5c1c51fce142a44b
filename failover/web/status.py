"""The public status page: HTML, Statuspage v2 JSON, Atom, RSS, a badge; sign-up, confirm, unsubscribe.

No login and nothing of Microsoft. Pages are rendered by failover/publish/render.py,
the same code that renders the static snapshot published elsewhere. Feeds name
themselves by ``FAILOVER_PUBLIC_URL``, never by the Host header a client sent.
Confirmation and unsubscribe links change nothing on GET (mail scanners open
links); a POST does, and the one-click unsubscribe (RFC 8058) needs no form token.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from failover.clock import utcnow
from failover.engine.notices import public_status
from failover.engine.subscribers import TooManyRequests
from failover.errors import InvalidRequest, NotFound
from failover.publish import render
from failover.web.access import public
from failover.web.forms import ConfirmForm
from failover.web.talkback import report_services
from failover.web.views import csrf, runtime

bp = Blueprint("status", __name__)
FRESH = "public, max-age=15"


def _links() -> render.Links:
    return render.Links(
        root=request.script_root,
        subscribe=url_for("status.subscribe"),
        report=url_for("talkback.report_problem"),
        report_services=tuple(report_services()),
    )


def _public(body: str | bytes, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = FRESH
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _self_url(endpoint: str, **values: str) -> str:
    return runtime().settings.public_url.rstrip("/") + url_for(endpoint, **values).removeprefix(request.script_root)


@bp.get("/status")
def page():  # type: ignore[no-untyped-def]
    return _public(render.html(runtime().status.view(), _links()), "text/html")


@bp.get("/status.json")
def as_json():  # type: ignore[no-untyped-def]
    with runtime().database.reading() as session:
        data = public_status(session, utcnow()).as_json()
    response = jsonify(data)
    response.headers["Cache-Control"] = FRESH
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/status/feed.atom")
def feed():  # type: ignore[no-untyped-def]
    body = render.feed(runtime().status.view(), _links(), kind="atom", self_url=_self_url("status.feed"))
    return _public(body, "application/atom+xml")


@bp.get("/status/feed.rss")
def rss():  # type: ignore[no-untyped-def]
    body = render.feed(runtime().status.view(), _links(), kind="rss", self_url=_self_url("status.rss"))
    return _public(body, "application/rss+xml")


@bp.get("/status/components/<component_id>/feed.<kind>")
def component_feed(component_id: str, kind: str):  # type: ignore[no-untyped-def]
    view = runtime().status.view()
    component = next((c for c in view.components if c.id == component_id), None)
    if component is None or kind not in ("atom", "rss"):
        raise NotFound(f"no component feed {component_id[:60]}")
    url = _self_url("status.component_feed", component_id=component_id, kind=kind)
    body = render.feed(view, _links(), kind=kind, self_url=url, component=component)
    return _public(body, f"application/{kind}+xml")


@bp.get("/status/badge.svg")
def badge():  # type: ignore[no-untyped-def]
    return _public(render.badge(runtime().status.view()), "image/svg+xml")


@bp.get("/status/status.js")
def script():  # type: ignore[no-untyped-def]
    response = Response(render.script(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/api/v2/<path:document>")
@public
def statuspage_v2(document: str):  # type: ignore[no-untyped-def]
    documents = render.v2(runtime().status.view())
    if document not in documents:
        raise NotFound(f"no /api/v2/{document[:80]}")
    return _public(render.dumps(documents[document]), "application/json")


# -- subscribers ------------------------------------------------------------------------------------------


@bp.route("/status/subscribe", methods=["GET", "POST"])
def subscribe():  # type: ignore[no-untyped-def]
    status = runtime().status
    names = status.page().names
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("status_subscribe.html", form=form, components=names, done=False, error=None)
    if not form.validate_on_submit():
        return render_template(
            "status_subscribe.html", form=form, components=names, done=False, error="the form expired; try again"
        ), 400
    kind = request.form.get("kind", "email")
    chosen = request.form.getlist("component")
    try:
        status.subscribe(kind=kind, address=request.form.get("address", ""), components=chosen, client=_client())
    except TooManyRequests as exc:
        return render_template("status_subscribe.html", form=form, components=names, done=False, error=str(exc)), 429
    except InvalidRequest as exc:
        return render_template("status_subscribe.html", form=form, components=names, done=False, error=str(exc)), 400
    # The same answer whether the address was new, pending, subscribed or throttled: nothing is revealed.
    return render_template("status_subscribe.html", form=form, components=names, done=kind, error=None)


@bp.route("/status/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("status_token.html", form=form, action="confirm", done=False)
    if not form.validate_on_submit():
        raise InvalidRequest("the form expired; open the link again")
    runtime().status.confirm(token)
    return render_template("status_token.html", form=form, action="confirm", done=True)


@bp.route("/status/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("status_token.html", form=None, action="unsubscribe", done=False)
    runtime().status.unsubscribe(token)  # a forged token is a 404; a second click changes nothing
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response("unsubscribed\n", mimetype="text/plain")
    return render_template("status_token.html", form=None, action="unsubscribe", done=True)


def _client() -> str:
    return hashlib.sha256((request.remote_addr or "unknown").encode()).hexdigest()[:32]
