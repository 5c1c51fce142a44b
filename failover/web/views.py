"""Helpers shared by the blueprints: the runtime, CSRF, template filters."""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app
from flask_wtf import CSRFProtect
from markdown_it import MarkdownIt
from markupsafe import Markup

from failover.privacy import mask_address
from failover.runtime import Runtime

csrf = CSRFProtect()
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def runtime() -> Runtime:
    return current_app.extensions["failover"]  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.jinja_env.filters["mask"] = mask_address
    # html=False: raw HTML in a notice is shown as text, so the output is safe to mark up.
    app.jinja_env.filters["markdown"] = lambda text: Markup(_markdown.render(text or ""))
    app.jinja_env.filters["when"] = _when


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
