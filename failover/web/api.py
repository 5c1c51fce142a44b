"""The JSON API under /api/v1/: bearer tokens, JSON errors, an OpenAPI document that matches.

Each route is declared once with :func:`route`, which registers the Flask
view, its role (see :mod:`failover.web.access`) and its OpenAPI operation.
Views stay thin: parse with a model from :mod:`failover.web.api_schema`, call
one use case, answer through the documented response model. The blueprint is
exempt from CSRF: it never accepts the console cookie for anything but GET.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ValidationError

from failover import inputs
from failover.domain.preview import Preview
from failover.engine import audit, auditlog, notices, queries
from failover.engine.activation import Accepted
from failover.errors import InvalidRequest
from failover.web import api_schema as schema
from failover.web.access import actor, requires
from failover.web.views import read, runtime, transact

bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPERATIONS: list[schema.Operation] = []


def route(
    rule: str,
    method: str,
    *,
    role: str,
    summary: str,
    response: type[BaseModel],
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    extra_responses: dict[int, type[BaseModel]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        path = "/api/v1" + rule.replace("<id:", "{").replace(">", "}")
        OPERATIONS.append(
            schema.Operation(
                method=method,
                path=path,
                operation_id=view.__name__,
                summary=summary,
                role=role,
                response=response,
                status=status,
                body=body,
                query=query,
                extra_responses=extra_responses or {},
            )
        )
        requires(role)(view)
        bp.add_url_rule(rule, view_func=view, methods=[method])
        return view

    return register


def parse(model: type[schema.BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise InvalidRequest(problems) from None


def body(model: type[BaseModel]) -> Any:
    data = None
    if request.is_json:
        try:
            data = inputs.load_json(request.get_data(cache=True))
        except inputs.InputError as exc:
            raise InvalidRequest(f"body: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object (Content-Type: application/json)")
    return parse(model, data)


def args(model: type[BaseModel]) -> Any:
    return parse(model, request.args.to_dict())


def answer(model: type[BaseModel], data: Any, status: int = 200):  # type: ignore[no-untyped-def]
    return jsonify(schema.dump(model, data)), status


# -- the document ---------------------------------------------------------------------


@bp.get("/openapi.json")
@requires("viewer")
def openapi():  # type: ignore[no-untyped-def]
    rt = runtime()
    doc = schema.document(
        OPERATIONS, runbook_ids=list(rt.config.catalog().runbooks), server_url=rt.settings.public_url.rstrip("/")
    )
    from failover.web import api_status  # the status page's routes (they import this module)

    api_status.name_components(doc, rt.status.page().names)
    return jsonify(doc)


# -- runbooks and incidents ---------------------------------------------------------------


@route("/runbooks", "GET", role="viewer", summary="List runbooks", response=schema.RunbookList)
def list_runbooks():  # type: ignore[no-untyped-def]
    books = runtime().config.catalog().runbooks.values()
    return answer(
        schema.RunbookList,
        {
            "runbooks": [
                {
                    "id": r.id,
                    "title": r.title,
                    "description": r.description,
                    "activation": r.trigger.activation,
                    "services": list(r.trigger.services),
                    "drill_group": r.drill_group,
                }
                for r in books
            ]
        },
    )


@route(
    "/incidents",
    "GET",
    role="viewer",
    summary="List incidents, newest first",
    response=schema.IncidentList,
    query=schema.IncidentQuery,
)
def list_incidents():  # type: ignore[no-untyped-def]
    q = args(schema.IncidentQuery)
    state = {"open": "confirmed", "resolved": "resolved"}.get(q.state)
    found = read(queries.incidents, state=state, limit=q.limit)
    return answer(schema.IncidentList, {"incidents": found})


@route(
    "/incidents/<id:incident_id>",
    "GET",
    role="viewer",
    summary="An incident and its activations",
    response=schema.IncidentDetail,
)
def get_incident(incident_id: int):  # type: ignore[no-untyped-def]
    return answer(schema.IncidentDetail, read(queries.incident_detail, incident_id))


@route(
    "/incidents/<id:incident_id>/resolve",
    "POST",
    role="operator",
    summary="Stand down: resolve the incident and send each runbook's all-clear once",
    response=schema.Resolved,
    body=schema.ResolveRequest,
)
def resolve_incident(incident_id: int):  # type: ignore[no-untyped-def]
    req = body(schema.ResolveRequest)
    accepted, broker_ok = runtime().activations.resolve(
        incident_id=incident_id, actor=actor(), note=req.note, all_clear=req.all_clear, override=req.override
    )
    incident = read(queries.incident_detail, incident_id)
    return answer(
        schema.Resolved,
        {"incident": incident, "all_clear": [_accepted(a) for a in accepted], "broker_accepted": broker_ok},
    )


# -- activations -----------------------------------------------------------------------------


@route(
    "/activations",
    "GET",
    role="viewer",
    summary="Recent activations with their progress",
    response=schema.ActivationList,
    query=schema.ListQuery,
)
def list_activations():  # type: ignore[no-untyped-def]
    q = args(schema.ListQuery)
    return answer(schema.ActivationList, {"activations": read(queries.recent_activations, limit=q.limit)})


@route(
    "/activations",
    "POST",
    role="operator",
    summary="Activate runbooks for a new incident (201), or preview them with dry_run (200)",
    response=schema.Triggered,
    status=201,
    body=schema.ActivationCreate,
    extra_responses={200: schema.Preview},
)
def create_activation():  # type: ignore[no-untyped-def]
    req = body(schema.ActivationCreate)
    rt = runtime()
    unknown = [r for r in req.runbooks if rt.config.catalog().runbook(r) is None]
    if unknown:
        raise InvalidRequest(f"unknown runbook(s): {', '.join(unknown)}")
    request_args = {
        "runbook_ids": req.runbooks,
        "reason": req.reason,
        "actor": actor(),
        "services": req.services,
        "drill": req.drill,
        "override": req.override,
        "message": req.message,
    }
    if req.dry_run:
        return answer(schema.Preview, _preview(rt.activations.preview(**request_args)))
    accepted, broker_ok = rt.activations.trigger(**request_args, source="api")
    return answer(
        schema.Triggered,
        {
            "incident_id": accepted[0].incident_id,
            "activations": [_accepted(a) for a in accepted],
            "broker_accepted": broker_ok,
        },
        201,
    )


@route(
    "/activations/<id:activation_id>",
    "GET",
    role="viewer",
    summary="An activation's progress and its failures (addresses masked)",
    response=schema.ActivationDetail,
)
def get_activation(activation_id: int):  # type: ignore[no-untyped-def]
    return answer(schema.ActivationDetail, read(queries.activation_detail, activation_id))


@route(
    "/activations/<id:activation_id>/approve",
    "POST",
    role="operator",
    summary="Approve an activation awaiting approval (not your own)",
    response=schema.AcceptedActivation,
)
def approve_activation(activation_id: int):  # type: ignore[no-untyped-def]
    accepted, _ = runtime().activations.approve(activation_id=activation_id, actor=actor())
    return answer(schema.AcceptedActivation, _accepted(accepted))


@route(
    "/activations/<id:activation_id>/cancel",
    "POST",
    role="operator",
    summary="Withdraw an activation that is still awaiting approval",
    response=schema.Activation,
)
def cancel_activation(activation_id: int):  # type: ignore[no-untyped-def]
    runtime().activations.cancel(activation_id=activation_id, actor=actor(), reason="withdrawn through the API")
    return answer(schema.Activation, read(queries.activation_progress, activation_id))


# -- notices ---------------------------------------------------------------------------------


@route(
    "/notices",
    "GET",
    role="viewer",
    summary="Status-page notices",
    response=schema.NoticeList,
    query=schema.NoticeQuery,
)
def list_notices():  # type: ignore[no-untyped-def]
    q = args(schema.NoticeQuery)
    state = None if q.state == "all" else q.state
    return answer(schema.NoticeList, {"notices": read(notices.list_notices, state=state, limit=q.limit)})


@route(
    "/notices",
    "POST",
    role="operator",
    summary="Post a notice on the status page",
    response=schema.Notice,
    status=201,
    body=schema.NoticeCreate,
)
def create_notice():  # type: ignore[no-untyped-def]
    req = body(schema.NoticeCreate)
    notice = transact(
        notices.post,
        title=req.title,
        body=req.body,
        severity=req.severity,
        incident_id=req.incident_id,
        actor=actor(),
    )
    return answer(schema.Notice, read(notices.get, notice.id), 201)


@route("/notices/<id:notice_id>", "GET", role="viewer", summary="One notice", response=schema.Notice)
def get_notice(notice_id: int):  # type: ignore[no-untyped-def]
    return answer(schema.Notice, read(notices.get, notice_id))


@route(
    "/notices/<id:notice_id>",
    "PATCH",
    role="operator",
    summary="Edit an open notice",
    response=schema.Notice,
    body=schema.NoticeUpdate,
)
def update_notice(notice_id: int):  # type: ignore[no-untyped-def]
    req = body(schema.NoticeUpdate)
    transact(notices.edit, notice_id=notice_id, title=req.title, body=req.body, severity=req.severity, actor=actor())
    return answer(schema.Notice, read(notices.get, notice_id))


@route(
    "/notices/<id:notice_id>/close",
    "POST",
    role="operator",
    summary="Close a notice (it moves to the status page's recent history)",
    response=schema.Notice,
)
def close_notice(notice_id: int):  # type: ignore[no-untyped-def]
    transact(notices.close, notice_id=notice_id, actor=actor())
    return answer(schema.Notice, read(notices.get, notice_id))


# -- audit -----------------------------------------------------------------------------------


@route(
    "/audit",
    "GET",
    role="viewer",
    summary="Audit events, newest first; page with before_id",
    response=schema.AuditPage,
    query=schema.AuditQuery,
)
def list_audit():  # type: ignore[no-untyped-def]
    q = args(schema.AuditQuery)
    filters = auditlog.AuditFilter(
        since=schema.parse_time(q.since),
        until=schema.parse_time(q.until),
        actor=q.actor or None,
        action=q.action or None,
        incident_id=q.incident_id,
    )
    events, next_before = read(auditlog.page, filters, before_id=q.before_id, limit=q.limit)
    return answer(schema.AuditPage, {"events": events, "next_before_id": next_before})


@route("/audit/verify", "GET", role="viewer", summary="Verify the audit hash chain", response=schema.Verdict)
def verify_audit():  # type: ignore[no-untyped-def]
    verdict = read(audit.verify)
    return answer(schema.Verdict, asdict(verdict))


# -- helpers ------------------------------------------------------------------------------------


def _accepted(item: Accepted) -> dict[str, Any]:
    return {
        "activation_id": item.activation_id,
        "state": item.state,
        "counts": item.counts,
        "skipped": item.skipped,
        "created": item.created,
    }


def _preview(preview: Preview) -> dict[str, Any]:
    data = asdict(preview)
    cost = preview.cost
    data["cost"] = {
        "currency": cost.currency,
        "sms_segments": cost.sms_segments,
        "emails": cost.emails,
        "sms": None if cost.sms is None else str(cost.sms),
        "email": None if cost.email is None else str(cost.email),
        "total": None if cost.total is None else str(cost.total),
    }
    data["dry_run"] = True
    data["outbox_only"] = list(preview.outbox_only)
    handout = preview.handout
    data["handout"] = None if handout is None else {**asdict(handout), "after_send_s": handout.after_send_s}
    return data
