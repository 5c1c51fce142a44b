"""The status page in the JSON API: public incidents and their updates (with ``dry_run`` previews), subscribers.

Registered on the /api/v1/ blueprint through ``api.route``, so each operation
is in the OpenAPI document and fuzzed with the rest.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator

from failover.domain import statuspage as sp
from failover.web import api_schema as schema
from failover.web.access import actor
from failover.web.api import answer, body, route
from failover.web.views import runtime

IncidentProgress = Literal["investigating", "identified", "monitoring", "resolved"]
MaintenanceProgress = Literal["scheduled", "in_progress", "verifying", "completed"]
Progress = Literal[
    "investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress", "verifying", "completed"
]
State = Literal["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]  # one of the page's components (enum)
# This century: a window must end in a representable year however long it lasts.
When = Annotated[
    str,
    StringConstraints(pattern=r"^20\d{2}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"),
    Field(json_schema_extra={"format": "date-time"}),
]


def _real_time(value: str) -> str:
    try:
        schema.parse_time(value)
    except (ValueError, OverflowError):
        raise ValueError("is not a real date and time") from None
    return value


class StatusIncidentCreate(schema.Model):
    """Open a public incident; ``dry_run`` previews it (the text as the page shows it, who is told)."""

    title: schema.Title  # type: ignore[valid-type]
    body: schema.Body  # type: ignore[valid-type]
    impact: Literal["none", "minor", "major", "critical"] = "major"
    status: IncidentProgress = "investigating"
    components: dict[Name, State] = Field(default_factory=dict, max_length=100)
    dry_run: bool = False


class StatusMaintenanceCreate(schema.Model):
    """Schedule a maintenance window of ``minutes`` from ``scheduled_for``; its components are under maintenance."""

    title: schema.Title  # type: ignore[valid-type]
    body: schema.Body  # type: ignore[valid-type]
    scheduled_for: When
    minutes: Annotated[int, Field(ge=1, le=10_080), BeforeValidator(schema._json_integer)]
    status: MaintenanceProgress = "scheduled"
    components: list[Name] = Field(default_factory=list, max_length=100)
    dry_run: bool = False

    _time = field_validator("scheduled_for")(_real_time)


class StatusUpdateCreate(schema.Model):
    """A new entry on an open incident's timeline; ``resolved`` / ``completed`` closes it (409 if already closed,
    or if the status belongs to the other kind)."""

    status: Progress
    body: schema.Body  # type: ignore[valid-type]
    impact: Literal["none", "minor", "major", "critical"] | None = None
    components: dict[Name, State] = Field(default_factory=dict, max_length=100)
    dry_run: bool = False


class StatusPosted(BaseModel):
    id: int | None  # None for a dry run
    dry_run: bool
    title: str
    status: str
    components: dict[str, str]
    body_html: str
    email_subject: str
    sms: str
    subscribers: dict[str, int]  # confirmed subscribers it reaches, by kind


class Subscriber(BaseModel):
    id: int
    kind: str
    address: str
    components: list[str] | None
    state: str
    created_at: str | None
    confirmed_at: str | None
    unsubscribed_at: str | None


class SubscriberList(BaseModel):
    subscribers: list[Subscriber]


@route(
    "/status/incidents",
    "POST",
    role="operator",
    summary="Open a public status page incident (dry_run: preview)",
    response=StatusPosted,
    status=201,
    body=StatusIncidentCreate,
    extra_responses={200: StatusPosted},
)
def create_status_incident():  # type: ignore[no-untyped-def]
    req = body(StatusIncidentCreate)
    status = runtime().status
    item = status.draft(
        title=req.title, body=req.body, impact=req.impact, progress=req.status, components=dict(req.components)
    )
    return _post(item, req.dry_run)


@route(
    "/status/maintenances",
    "POST",
    role="operator",
    summary="Schedule a maintenance window on the status page (dry_run: preview)",
    response=StatusPosted,
    status=201,
    body=StatusMaintenanceCreate,
    extra_responses={200: StatusPosted},
)
def create_status_maintenance():  # type: ignore[no-untyped-def]
    req = body(StatusMaintenanceCreate)
    start = schema.parse_time(req.scheduled_for)
    assert start is not None
    item = runtime().status.draft(
        kind="maintenance",
        title=req.title,
        body=req.body,
        progress=req.status,
        components={name: sp.MAINTENANCE for name in req.components},
        scheduled_for=start,
        scheduled_until=start + dt.timedelta(minutes=req.minutes),
    )
    return _post(item, req.dry_run)


def _post(item: Any, dry_run: bool):  # type: ignore[no-untyped-def]
    status = runtime().status
    preview = status.preview(item)
    if dry_run:
        return answer(StatusPosted, {"id": None, "dry_run": True, **preview}, 200)
    notice_id = status.open_incident(item=item, actor=actor())
    return answer(StatusPosted, {"id": notice_id, "dry_run": False, **preview}, 201)


@route(
    "/status/incidents/<id:notice_id>/updates",
    "POST",
    role="operator",
    summary="Post an update on a public incident (dry_run: preview)",
    response=StatusPosted,
    status=201,
    body=StatusUpdateCreate,
    extra_responses={200: StatusPosted},
)
def create_status_update(notice_id: int):  # type: ignore[no-untyped-def]
    req = body(StatusUpdateCreate)
    status = runtime().status
    item = status.draft(
        kind=status.kind_of(notice_id),  # a status of the other kind is then a 409
        title="",
        body=req.body,
        impact=req.impact or "",  # none given: the incident keeps its impact
        progress=req.status,
        components=dict(req.components),
        need_title=False,
    )
    preview = status.preview(item, notice_id=notice_id)
    if req.dry_run:
        return answer(StatusPosted, {"id": None, "dry_run": True, **preview}, 200)
    status.post_update(notice_id=notice_id, item=item, actor=actor())
    return answer(StatusPosted, {"id": notice_id, "dry_run": False, **preview}, 201)


@route(
    "/status/subscribers",
    "GET",
    role="admin",
    summary="Status page subscribers (all states)",
    response=SubscriberList,
)
def list_status_subscribers():  # type: ignore[no-untyped-def]
    rows: list[dict[str, Any]] = runtime().status.subscribers()
    for row in rows:
        for key in ("created_at", "confirmed_at", "unsubscribed_at"):
            row[key] = row[key].isoformat() if row[key] else None
    return answer(SubscriberList, {"subscribers": rows})


def name_components(doc: dict[str, Any], names: list[str]) -> None:
    """The page's components by name in the OpenAPI document, as the runbook ids are."""
    schemas = doc.get("components", {}).get("schemas", {})
    for model in ("StatusIncidentCreate", "StatusUpdateCreate"):
        if model in schemas:
            prop = schemas[model]["properties"]["components"]
            prop["propertyNames"] = {"enum": names} if names else {"maxLength": 0}
            if not names:
                prop["maxProperties"] = 0
    if "StatusMaintenanceCreate" in schemas:
        items = schemas["StatusMaintenanceCreate"]["properties"]["components"]["items"]
        if names:
            items["enum"] = names
        else:
            schemas["StatusMaintenanceCreate"]["properties"]["components"]["maxItems"] = 0
