"""The public self-service page (/me/<token>): a person confirms their personal mobile, email and language.

No login: the link is the credential (single person, expires, a few tries; see engine.selfservice). Every
answer for a bad, used or expired link is the same 404, so links cannot be probed.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from failover.domain import csvimport
from failover.errors import InvalidRequest
from failover.web.access import public
from failover.web.views import runtime

bp = Blueprint("selfservice", __name__, url_prefix="/me")


def _region() -> str:
    source = runtime().people.config().source("csv")
    return source.default_region if source else "US"


@bp.get("/<token>")
@public
def form(token: str):  # type: ignore[no-untyped-def]
    return render_template("selfservice.html", token=token, page=runtime().people.self_page(token[:100]))


@bp.post("/<token>")
@public
def submit(token: str):  # type: ignore[no-untyped-def]
    token = token[:100]
    page = runtime().people.self_page(token)
    phone, email, language, problems = csvimport.contact_entry(
        request.form.get("phone", ""), request.form.get("email", ""), request.form.get("language", ""), region=_region()
    )
    if problems:
        return render_template("selfservice.html", token=token, page=page, problems=problems), 400
    sent = runtime().people.self_submit(token, phone=phone, email=email, language=language)
    page = runtime().people.self_page(token) if sent else None
    return render_template("selfservice.html", token=token, page=page, sent=sent, done=not sent)


@bp.post("/<token>/confirm")
@public
def confirm(token: str):  # type: ignore[no-untyped-def]
    token = token[:100]
    page = runtime().people.self_page(token)
    ok = runtime().people.self_confirm(
        token, phone_code=request.form.get("phone_code", "")[:12], email_code=request.form.get("email_code", "")[:12]
    )
    if not ok:
        raise InvalidRequest("a code does not match: check the messages and try again")
    return render_template("selfservice.html", token=token, page=page, done=True)
