"""Helpers shared by the blueprints: the runtime, CSRF, template filters, the ``id`` URL converter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_wtf import CSRFProtect
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from werkzeug.routing import IntegerConverter

from failover.clock import utcnow
from failover.models import MAX_ID
from failover.privacy import mask_address
from failover.runtime import Runtime

csrf = CSRFProtect()
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


T = TypeVar("T")


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1 to 2**31-1; anything else is a 404, never an overflow in the driver."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def runtime() -> Runtime:
    """The Runtime ``create_app`` attached to this app."""
    found = current_app.extensions["failover"]
    assert isinstance(found, Runtime)
    return found


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
    app.jinja_env.filters["when"] = lambda value: _when(value, app)


def _when(value: dt.datetime | str | None, app: Flask) -> Markup | str:
    """A moment for people: datetimes and the read models' ISO strings alike, as ``when`` says."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    zone = ZoneInfo(app.extensions["failover"].settings.timezone)
    text = when(value, now=utcnow(), zone=zone)
    exact = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{escape(value.isoformat())}" title="{exact}">{escape(text)}</time>')


def when(value: dt.datetime, *, now: dt.datetime, zone: ZoneInfo) -> str:
    """ "09:05, 4 min ago (08:05 UTC)": the local time first, how long ago, and UTC beside it.

    In UTC itself: "08:05 UTC, 4 min ago". Another day than today gets its date ("31 Jan 09:05").
    """
    local, utc = value.astimezone(zone), value.astimezone(dt.UTC)
    today = now.astimezone(zone).date()
    day = ""
    if local.date() != today:
        day = f"{local.day} {local:%b} " + ("" if local.year == today.year else f"{local.year} ")
    ago = _relative(now - value)
    if zone.key == "UTC":
        return f"{day}{utc:%H:%M} UTC, {ago}"
    utc_day = "" if utc.date() == local.date() else f"{utc.day} {utc:%b} "
    return f"{day}{local:%H:%M}, {ago} ({utc_day}{utc:%H:%M} UTC)"


def _relative(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now" if not future else "in under a minute"
    minutes = seconds // 60
    if minutes < 60:
        text = f"{minutes} min"
    elif minutes < 24 * 60:
        text = f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
    else:
        days = minutes // (24 * 60)
        text = f"{days} day{'s' if days != 1 else ''}"
    return f"in {text}" if future else f"{text} ago"
