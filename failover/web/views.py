"""Helpers shared by the blueprints: the runtime, CSRF, template filters, the ``id`` URL converter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_wtf import CSRFProtect
from markdown_it import MarkdownIt
from markupsafe import Markup
from werkzeug.routing import IntegerConverter

from failover.privacy import mask_address
from failover.runtime import Runtime

csrf = CSRFProtect()
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


T = TypeVar("T")
MAX_ID = 2_147_483_647


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1 to 2**31-1; anything else is a 404, never an overflow in the driver."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def runtime() -> Runtime:
    return current_app.extensions["failover"]  # type: ignore[no-any-return]


def transact(use_case: Callable[..., T], **kwargs: Any) -> T:
    """Run one engine use case in one read-write transaction."""
    with runtime().database.transaction() as session:
        return use_case(session, **kwargs)


def read(query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one read model in a read-only session."""
    with runtime().database.reading() as session:
        return query(session, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    csrf.init_app(app)
    app.jinja_env.filters["mask"] = mask_address
    # html=False: raw HTML in a notice is shown as text, so the output is safe to mark up.
    app.jinja_env.filters["markdown"] = lambda text: Markup(_markdown.render(text or ""))
    app.jinja_env.filters["when"] = _when


def _when(value: dt.datetime | str | None) -> str:
    """A moment for people: datetimes and the read models' ISO strings alike."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
