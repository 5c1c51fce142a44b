"""The JSON API's request and response shapes, and the OpenAPI 3.1 document built from them.

Every API view parses its input with one of these models and passes its
output through one (:func:`dump`), and the document at
``/api/v1/openapi.json`` is generated from the same models and the same
route table, so the description cannot drift from the implementation.
``tests/integration/test_api_schema.py`` runs schemathesis against it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from failover.engine.notices import SEVERITIES
from failover.models import MAX_ID

_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# At least one visible character, no control characters (PostgreSQL refuses NUL outright).
_SOME_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 3 and 3.0 are integers, true and "3" are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


Text = Annotated[str, StringConstraints(pattern=_NO_CONTROL)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_json_integer)]
Severity = Literal["info", "minor", "major", "critical"]
assert set(SEVERITIES) == {"info", "minor", "major", "critical"}


def _some_text(max_length: int) -> Any:
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length, pattern=_SOME_TEXT)]


Reason = _some_text(500)
Message = _some_text(500)
Service = _some_text(100)
Override = _some_text(1600)
Title = _some_text(300)
Body = _some_text(10_000)


class Model(BaseModel):
    """A request body: strict JSON types (true is not 1), no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- requests -------------------------------------------------------------------------


class ActivationCreate(Model):
    """Activate one or more runbooks for one new incident, or with ``dry_run`` only preview them."""

    runbooks: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]] = Field(
        min_length=1, max_length=10
    )
    reason: Reason = Field(
        description=(
            "Internal note: why you activate. Written to the audit log and shown in the console, never sent to "
            "recipients. (Changed: it used to be pasted into staff emails as `activation.reason`; send such text "
            "in `message` now.)"
        )
    )
    message: Message | None = Field(
        None,
        description=(
            "Text shown to recipients: templates print it as `activation.message` (and, for templates written "
            "before, `activation.reason`). Omit it and recipients see only the runbook's texts."
        ),
    )
    services: list[Service] = Field(default_factory=list, max_length=20)
    drill: bool = False
    override: Override | None = Field(None, description="Replaces the whole text of every SMS and email.")
    dry_run: bool = Field(False, description="Only preview: what would be sent, to how many, at what cost.")


class NoticeCreate(Model):
    title: Title
    body: Body
    severity: Severity = "major"
    incident_id: BodyId | None = None


class NoticeUpdate(Model):
    """Give the fields to change (at least one); null is not a value."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"minProperties": 1})

    title: Title = Field(None, json_schema_extra=lambda s: s.pop("default", None))  # type: ignore[arg-type]
    body: Body = Field(None, json_schema_extra=lambda s: s.pop("default", None))  # type: ignore[arg-type]
    severity: Severity = Field(None, json_schema_extra=lambda s: s.pop("default", None))  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _something(self) -> NoticeUpdate:
        if self.title is None and self.body is None and self.severity is None:
            raise ValueError("give at least one of title, body, severity")
        return self


class ResolveRequest(Model):
    note: Annotated[str, StringConstraints(max_length=500, pattern=_NO_CONTROL)] = ""
    all_clear: bool = True  # false: resolve and close the notices, message nobody
    override: Override | None = None  # replaces the all-clear's SMS and email texts


# -- query strings ----------------------------------------------------------------------


class Query(BaseModel):
    """Unknown query parameters are refused: a typo (?limt=5) is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class IncidentQuery(Query):
    state: Literal["open", "resolved", "all"] = "all"
    limit: int = Field(50, ge=1, le=200)


class ListQuery(Query):
    limit: int = Field(50, ge=1, le=200)


class NoticeQuery(Query):
    state: Literal["open", "closed", "all"] = "all"
    limit: int = Field(100, ge=1, le=200)


class AuditQuery(Query):
    since: str | None = Field(None, json_schema_extra={"format": "date-time"})
    until: str | None = Field(None, json_schema_extra={"format": "date-time"})
    actor: Annotated[str, StringConstraints(max_length=64, pattern=_NO_CONTROL)] | None = None
    action: Annotated[str, StringConstraints(max_length=64, pattern=_NO_CONTROL)] | None = None
    incident_id: Id | None = None
    before_id: Id | None = None
    limit: int = Field(100, ge=1, le=500)

    @field_validator("since", "until")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            if not _RFC3339.match(value):
                raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T09:00:00Z")
            try:
                parse_time(value)
            except ValueError:
                raise ValueError("is not a real date and time") from None
            except OverflowError:  # 0001-01-01T00:00:00+23:59 is before the first representable UTC time
                raise ValueError("is out of range (years 1 to 9999 in UTC)") from None
        return value


def parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    return parsed.astimezone(dt.UTC)


# -- responses -------------------------------------------------------------------------------


class Error(BaseModel):
    error: str
    status: int


class Runbook(BaseModel):
    id: str
    title: str
    description: str
    activation: Literal["auto", "manual", "approval"]
    services: list[str]
    drill_group: str | None


class RunbookList(BaseModel):
    runbooks: list[Runbook]


class Incident(BaseModel):
    id: int
    title: str
    services: list[str]
    state: str
    source: str
    drill: bool
    ms_issue_ids: list[str]
    impact: str | None
    opened_by: str
    opened_at: str | None
    resolved_at: str | None
    resolved_by: str | None


class Activation(BaseModel):
    id: int
    incident_id: int
    runbook: str
    phase: str
    state: str
    reason: str = Field(description="The internal note (audit log only, never sent)")
    message: str | None = Field(None, description="The text shown to recipients, if any")
    requested_by: str
    approved_by: str | None
    drill: bool
    created_at: str | None
    completed_at: str | None
    progress: dict[str, int]
    total: int
    done: bool


class IncidentDetail(Incident):
    activations: list[Activation]


class IncidentList(BaseModel):
    incidents: list[Incident]


class ActivationList(BaseModel):
    activations: list[Activation]


class Delivery(BaseModel):
    """One ledger row; ``to`` is masked."""

    id: int
    step: str
    person: str
    channel: str
    to: str
    status: str
    attempts: int
    transport: str | None
    provider_id: str | None
    error_code: str | None
    error: str | None
    sent_at: str | None
    updated_at: str | None


class ActivationDetail(Activation):
    failures: list[Delivery]


class SmsInfo(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    units: int
    segments: int
    non_gsm: list[str]


class PreviewText(BaseModel):
    subject: str | None
    body: str
    recipients: int
    sms: SmsInfo | None


class PreviewStep(BaseModel):
    step: str
    label: str = Field(description='For people: "Step 1 · SMS to oncall"')
    channel: str
    transport: str | None = Field(
        description="What carries it: twilio, sendgrid, status, or outbox (kept in the console, sent to nobody)"
    )
    recipients: int
    groups: dict[str, int]
    texts: list[PreviewText]


class PreviewRunbook(BaseModel):
    runbook_id: str
    title: str
    phase: str
    needs_approval: bool
    steps: list[PreviewStep]


class PreviewSkip(BaseModel):
    runbook_id: str
    step: str
    label: str
    person_id: str
    channel: str
    reason: str


class Cost(BaseModel):
    """Amounts are decimal strings; null when the price is not configured."""

    currency: str
    sms_segments: int
    emails: int
    sms: str | None
    email: str | None
    total: str | None


class HandOut(BaseModel):
    """How long the SMS take: our sending, then the provider's senders handing them out (seconds, estimates)."""

    messages: int
    segments: int
    sender_mps: float | None = Field(description="FAILOVER_TWILIO_SENDER_MPS; null: not declared")
    send_s: float | None = Field(description="our sending at the allowed concurrency; null: no cap configured")
    provider_s: float | None = Field(description="Twilio handing every segment out; null: MPS not declared")
    after_send_s: float | None = Field(description="how long after our last request the last segment leaves")
    vonage_s: float | None = Field(description="the same messages at FAILOVER_VONAGE_RATE, when Vonage is used")
    text: str


class Preview(BaseModel):
    dry_run: Literal[True]
    runbooks: list[PreviewRunbook]
    counts: dict[str, int]
    groups: dict[str, dict[str, int]]
    skipped: list[PreviewSkip]
    cost: Cost
    fingerprint: str
    outbox_only: list[str] = Field(description="Channels that would only reach the outbox: nobody receives them")
    handout: HandOut | None = Field(None, description="How long the SMS take to reach phones; null: no SMS")


class AcceptedActivation(BaseModel):
    activation_id: int
    state: str
    counts: dict[str, int]
    skipped: int
    created: bool


class Triggered(BaseModel):
    incident_id: int
    activations: list[AcceptedActivation]
    broker_accepted: bool


class Resolved(BaseModel):
    incident: Incident
    all_clear: list[AcceptedActivation]
    broker_accepted: bool


class Notice(BaseModel):
    id: int
    title: str
    body: str
    severity: str
    state: str
    incident_id: int | None
    created_by: str
    created_at: str | None
    updated_at: str | None
    closed_at: str | None
    resolution: str | None = None  # the all-clear written on it when its incident was stood down


class NoticeList(BaseModel):
    notices: list[Notice]


class AuditEvent(BaseModel):
    id: int
    at: str | None
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    incident_id: int | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEvent]
    next_before_id: int | None


class Verdict(BaseModel):
    ok: bool
    checked: int
    bad_id: int | None
    reason: str


def dump(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """Pass outgoing data through its documented model: what is sent is what is described."""
    return model.model_validate(data).model_dump(mode="json")


# -- the document -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form: /api/v1/incidents/{incident_id}
    operation_id: str
    summary: str
    role: str
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    extra_responses: dict[int, type[BaseModel]] = field(default_factory=dict)


ERROR_TEXT = {
    400: "Bad input (the message says which)",
    401: "No valid bearer token",
    403: "The token's role is too low, or the action is not allowed (self-approval)",
    404: "No such object",
    409: "The object's state does not allow it now (already resolved, closed, not pending)",
}


def document(operations: list[Operation], *, runbook_ids: list[str], server_url: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [(Error, "serialization")]
    for op in operations:
        models.append((op.response, "serialization"))
        models.extend((m, "serialization") for m in op.extra_responses.values())
        if op.body is not None:
            models.append((op.body, "validation"))
    unique = list(dict.fromkeys(models))
    _, schemas = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    components = schemas.get("$defs", {})
    create = components.get("ActivationCreate")
    if create is not None and runbook_ids:
        create["properties"]["runbooks"]["items"]["enum"] = sorted(runbook_ids)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "failover API",
            "version": "1",
            "description": (
                "Contingency communication for Microsoft 365 outages. Authenticate with "
                "`Authorization: Bearer <token>`; an admin creates tokens (console: Admin > API tokens, "
                "or `failover token create`), each with a role (viewer < operator < admin) and an expiry. "
                "Errors are JSON `{error, status}`."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(op.status): {"description": "OK", "content": {"application/json": {"schema": _ref(op.response)}}}
    }
    for status, model in op.extra_responses.items():
        responses[str(status)] = {"description": "OK", "content": {"application/json": {"schema": _ref(model)}}}
    for status, text in ERROR_TEXT.items():
        responses[str(status)] = {"description": text, "content": {"application/json": {"schema": _ref(Error)}}}
    responses["default"] = {"description": "Any other error", "content": {"application/json": {"schema": _ref(Error)}}}
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": f"Needs the **{op.role}** role.",
        "parameters": _path_parameters(op.path) + _query_parameters(op.query),
        "responses": responses,
    }
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    return spec


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        }
        for name in re.findall(r"\{(\w+)\}", path)
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        if "anyOf" in prop:  # Optional[X]: a query parameter is simply left out instead of null
            options = [p for p in prop.pop("anyOf") if p.get("type") != "null"]
            prop = {**options[0], **prop}
        if prop.get("default", 0) is None:
            del prop["default"]
        parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
    return parameters
