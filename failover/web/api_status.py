"""The status page in the JSON API: public incidents and their updates (with ``dry_run`` previews), subscribers.

Registered on the /api/v1/ blueprint through ``api.route``, so each operation
is in the OpenAPI document and fuzzed with the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from failover.domain import statuspage as sp
from failover.web import api_schema as schema
from failover.web.access import actor
from failover.web.api import answer, body, route
from failover.web.views import runtime

Progress = Literal[
    "investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress", "verifying", "completed"
]
State = Literal["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")]
When = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _rfc3339(value: str | None) -> str | None:
    if value is not None:
        if not schema._RFC3339.match(value):
            raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T09:00:00Z")
        try:
            schema.parse_time(value)
        except (ValueError, OverflowError):
            raise ValueError("is not a real date and time in years 1 to 9999") from None
    return value


class StatusIncidentCreate(schema.Model):
    """Open a public incident or schedule a maintenance window; ``dry_run`` previews it and changes nothing."""

    kind: Literal["incident", "maintenance"] = "incident"
    title: schema.Title  # type: ignore[valid-type]
    body: schema.Body  # type: ignore[valid-type]
    impact: Literal["none", "minor", "major", "critical"] = "major"
    status: Progress | None = None
    components: dict[Name, State] = Field(default_factory=dict, max_length=100)
    scheduled_for: When | None = None
    scheduled_until: When | None = None
    dry_run: bool = False

    _times = field_validator("scheduled_for", "scheduled_until")(_rfc3339)


class StatusUpdateCreate(schema.Model):
    """A new entry on an open incident's timeline; ``resolved`` / ``completed`` closes it."""

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
    summary="Open a public status page incident or maintenance window (dry_run: preview)",
    response=StatusPosted,
    status=201,
    body=StatusIncidentCreate,
    extra_responses={200: StatusPosted},
)
def create_status_incident():  # type: ignore[no-untyped-def]
    req = body(StatusIncidentCreate)
    status = runtime().status
    item = status.draft(
        kind=req.kind,
        title=req.title,
        body=req.body,
        impact=req.impact,
        progress=req.status,
        components=dict(req.components),
        scheduled_for=schema.parse_time(req.scheduled_for),
        scheduled_until=schema.parse_time(req.scheduled_until),
    )
    preview = status.preview(item)
    if req.dry_run:
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
    kind = "maintenance" if req.status in sp.MAINTENANCE_PROGRESS else "incident"
    item = status.draft(
        kind=kind,
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
