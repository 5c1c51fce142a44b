"""The status page as files: HTML, Statuspage v2 JSON, Atom and RSS, a badge, one script.

One renderer for both the live routes (web/status.py) and the static
snapshot (publish/snapshot.py), so the copy at another provider is exactly
what the service shows. Plain Jinja (autoescaped; Markdown without raw HTML),
no Flask: the worker renders snapshots too. ``Links`` decides whether links
are the live paths or relative file names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from markupsafe import escape as html_escape

from failover.domain import statuspage as sp

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})
FEED_ITEMS = 50


@dataclass(frozen=True)
class Links:
    """Where the page's siblings are: live paths under ``root`` or files beside it (``static``)."""

    static: bool = False
    root: str = ""  # the app's script root, live only
    subscribe: str | None = None  # the live sign-up form (absolute in a snapshot), None: not offered
    # "Report a problem" (staff reports, web/talkback.py): live only, where the form can be answered.
    report: str | None = None
    report_services: tuple[str, ...] = ()

    def to(self, live: str, file: str) -> str:
        return file if self.static else f"{self.root}{live}"

    @property
    def page(self) -> str:
        return self.to("/status", "index.html")

    @property
    def json(self) -> str:
        return self.to("/status.json", "status.json")

    @property
    def atom(self) -> str:
        return self.to("/status/feed.atom", "feed.atom")

    @property
    def rss(self) -> str:
        return self.to("/status/feed.rss", "feed.rss")

    @property
    def badge(self) -> str:
        return self.to("/status/badge.svg", "badge.svg")

    @property
    def script(self) -> str:
        return self.to("/status/status.js", "status.js")

    @property
    def summary(self) -> str:
        return self.to("/api/v2/summary.json", "api/v2/summary.json")

    def component_feed(self, component_id: str, kind: str) -> str:
        return self.to(f"/status/components/{component_id}/feed.{kind}", f"components/{component_id}.{kind}")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _when(value: dt.datetime | None) -> Markup:
    """A time in UTC, marked up so that status.js can add the reader's local time."""
    if value is None:
        return Markup("")
    utc = value.astimezone(dt.UTC)
    return Markup('<time datetime="{}">{}</time>').format(_iso(utc), utc.strftime("%d %b %Y %H:%M UTC"))


def markdown(text: str) -> Markup:
    """Markdown as the page shows it: no raw HTML passes."""
    return Markup(_markdown.render(text or ""))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml", "svg"]), trim_blocks=True
    )
    env.filters["markdown"] = markdown
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.filters["rfc822"] = lambda v: v.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    env.globals.update(
        COMPONENT_LABELS=sp.COMPONENT_LABELS, PROGRESS_LABELS=sp.PROGRESS_LABELS, INDICATOR_TEXT=sp.INDICATOR_TEXT
    )
    return env


_ENV: Environment | None = None


def _env() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return _ENV


def html(view: sp.PageView, links: Links) -> str:
    return _env().get_template("statuspage/page.html").render(v=view, links=links)


def feed(
    view: sp.PageView, links: Links, *, kind: str, self_url: str, component: sp.ComponentView | None = None
) -> str:
    """Atom or RSS of incident updates: the page's, or one component's."""
    items = view.for_component(component.name) if component else [*view.incidents, *view.maintenances, *view.history]
    items = sorted(items, key=lambda i: i.updated_at, reverse=True)[:FEED_ITEMS]
    title = f"{view.brand.name}{f' - {component.name}' if component else ''}"
    template = "statuspage/feed.atom.xml" if kind == "atom" else "statuspage/feed.rss.xml"
    page_url = view.public_url.rstrip("/") + "/status"
    return (
        _env()
        .get_template(template)
        .render(v=view, items=items, title=title, self_url=self_url, page_url=page_url, links=links)
    )


BADGE_COLOURS = {
    "none": "#2e8540",
    "minor": "#b58105",
    "major": "#d9822b",
    "critical": "#c62828",
    "maintenance": "#3b6fb6",
}


def badge(view: sp.PageView) -> str:
    label, text = "status", view.description.lower()
    left, right = 6 * len(label) + 12, 6 * len(text) + 12
    colour = BADGE_COLOURS[view.indicator]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + right}" height="20" role="img" '
        f'aria-label="{escape(label)}: {escape(text)}"><title>{escape(label)}: {escape(text)}</title>'
        f'<rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="6" y="14">{escape(label)}</text><text x="{left + 6}" y="14">{escape(text)}</text></g></svg>'
    )


def script() -> str:
    return (TEMPLATES / "statuspage" / "status.js").read_text(encoding="utf-8")


# -- the Atlassian Statuspage public v2 shapes ------------------------------------------------------------------


def page_id(view: sp.PageView) -> str:
    return hashlib.sha256(view.public_url.encode()).hexdigest()[:12]


def _page(view: sp.PageView) -> dict[str, Any]:
    return {
        "id": page_id(view),
        "name": view.brand.name,
        "url": view.public_url.rstrip("/") + "/status",
        "time_zone": view.brand.timezone,
        "updated_at": _iso(view.updated_at or view.generated_at),
    }


def _component(view: sp.PageView, c: sp.ComponentView, groups: dict[str, str]) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.state,
        "created_at": _iso(view.generated_at),
        "updated_at": _iso(view.updated_at or view.generated_at),
        "position": c.position,
        "description": c.description,
        "showcase": True,
        "start_date": None,
        "group_id": groups.get(c.group) if c.group else None,
        "page_id": page_id(view),
        "group": False,
        "only_show_if_degraded": False,
    }


def components_json(view: sp.PageView) -> list[dict[str, Any]]:
    groups = {name: f"group-{sp.slug(name)}" for name, _ in view.groups if name}
    out = [_component(view, c, groups) for c in view.components]
    for position, (name, members) in enumerate(view.groups, start=len(out) + 1):
        if name:
            out.append(
                {
                    **_component(view, members[0], {}),
                    "id": groups[name],
                    "name": name,
                    "status": sp.worst(m.state for m in members),
                    "position": position,
                    "description": None,
                    "group": True,
                    "components": [m.id for m in members],
                }
            )
    return out


def incident_json(view: sp.PageView, item: sp.IncidentView) -> dict[str, Any]:
    by_name = {c.name: c for c in view.components}
    monitoring = [u.created_at for u in item.updates if u.progress == "monitoring"]
    data: dict[str, Any] = {
        "id": item.key,
        "name": item.name,
        "status": item.progress,
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
        "monitoring_at": _iso(monitoring[-1]) if monitoring else None,
        "resolved_at": _iso(item.resolved_at),
        "impact": item.impact,
        "shortlink": f"{view.public_url.rstrip('/')}/status#{item.key}",
        "started_at": _iso(item.created_at),
        "page_id": page_id(view),
        "incident_updates": [
            {
                "id": f"{item.key}-update-{u.id}",
                "status": u.progress,
                "body": u.body,
                "incident_id": item.key,
                "created_at": _iso(u.created_at),
                "updated_at": _iso(u.created_at),
                "display_at": _iso(u.created_at),
                "affected_components": [
                    {"code": sp.slug(name), "name": name, "old_status": None, "new_status": state}
                    for name, state in u.components.items()
                    if name in by_name
                ]
                or None,
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in item.updates
        ],
        "components": [_component(view, by_name[name], {}) for name in item.components if name in by_name],
    }
    if item.kind == "maintenance":
        data["scheduled_for"] = _iso(item.scheduled_for)
        data["scheduled_until"] = _iso(item.scheduled_until)
    return data


def v2(view: sp.PageView) -> dict[str, Any]:
    """Every /api/v2/ document by its path under api/v2/."""
    page = _page(view)
    status = {"indicator": view.indicator, "description": view.description}
    unresolved = [incident_json(view, i) for i in view.incidents]
    every = sorted([*view.incidents, *view.history], key=lambda i: i.updated_at, reverse=True)
    incidents = [incident_json(view, i) for i in every if i.kind != "maintenance"][:50]
    maint = [i for i in [*view.maintenances, *view.history] if i.kind == "maintenance"]
    upcoming = [incident_json(view, i) for i in view.maintenances if i.progress == "scheduled"]
    active = [incident_json(view, i) for i in view.maintenances if i.progress != "scheduled"]
    components = components_json(view)
    return {
        "summary.json": {
            "page": page,
            "components": components,
            "incidents": unresolved,
            "scheduled_maintenances": [incident_json(view, i) for i in view.maintenances],
            "status": status,
        },
        "status.json": {"page": page, "status": status},
        "components.json": {"page": page, "components": components},
        "incidents.json": {"page": page, "incidents": incidents},
        "incidents/unresolved.json": {"page": page, "incidents": unresolved},
        "scheduled-maintenances.json": {
            "page": page,
            "scheduled_maintenances": [incident_json(view, i) for i in maint],
        },
        "scheduled-maintenances/upcoming.json": {"page": page, "scheduled_maintenances": upcoming},
        "scheduled-maintenances/active.json": {"page": page, "scheduled_maintenances": active},
    }


def webhook_payload(view: sp.PageView, item: sp.IncidentView, *, unsubscribe: str) -> dict[str, Any]:
    """A Statuspage webhook notification for one incident (the ``incident`` kind of their payloads)."""
    return {
        "meta": {"unsubscribe": unsubscribe, "documentation": "https://support.atlassian.com/statuspage/"},
        "page": {
            "id": page_id(view),
            "status_indicator": view.indicator,
            "status_description": view.description,
        },
        "incident": incident_json(view, item),
    }


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def escape_html(text: str) -> str:
    return str(html_escape(text))
