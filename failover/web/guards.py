"""Refuse input no view can use, before any view sees it: file parts and unstorable characters.

Only the people CSV upload takes a file; elsewhere a form field sent as a multipart file part is a 400
naming the field (WTForms would otherwise hand a ``FileStorage`` to a text
validator). NUL can be stored in no PostgreSQL text column, so a query or form
value carrying one is a 400 naming the parameter, wherever it would have gone.
JSON bodies get the same treatment where they are parsed (:mod:`failover.inputs`).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.datastructures import MultiDict

from failover.domain import csvimport
from failover.web.errors import answer

MAX_NAME_SHOWN = 40
# The one route that takes a file (the people CSV upload, admins only) and how large it may be.
FILE_ROUTES = {"people.upload": csvimport.MAX_BYTES + 64 * 1024}


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_unusable_input() -> Any:
        allowance = FILE_ROUTES.get(request.endpoint or "")
        if allowance:
            request.max_content_length = allowance
        form = _form()
        if request.mimetype == "multipart/form-data" and request.files and not allowance:
            name = _shown(next(iter(request.files)))
            return answer(400, f"field '{name}' was sent as a file; this form takes text only")
        for where, values in (("query parameter", request.args), ("form field", form)):
            for name, value in values.items(multi=True):
                if "\x00" in name or "\x00" in value:
                    return answer(400, f"{where} '{_shown(name)}' contains a NUL character")
        return None


def _form() -> MultiDict[str, str]:
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        # Keep the raw body: views that verify a signature over it (the signals webhook) still get it.
        request.get_data(cache=True, parse_form_data=False)
        return request.form
    return MultiDict()


def _shown(name: str) -> str:
    return name[:MAX_NAME_SHOWN].replace("\x00", "?")
