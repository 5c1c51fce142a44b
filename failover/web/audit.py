"""The audit log page: filters, pages, CSV and JSON export, and whether the hash chain verifies.

Exports carry every column including both hashes, so anyone holding one can
re-check the chain. CSV cells that a spreadsheet would run as a formula are
prefixed with a quote (CSV injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, render_template, request, stream_with_context

from failover.clock import utcnow
from failover.engine import audit, auditlog
from failover.errors import InvalidRequest
from failover.web.access import requires
from failover.web.forms import AuditFilterForm
from failover.web.views import read, runtime

bp = Blueprint("audit", __name__)
PAGE = 100
FILTER_FIELDS = ("since", "until", "actor", "action", "incident")


def _filters(form: AuditFilterForm) -> auditlog.AuditFilter:
    def utc(value: dt.datetime | None) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None

    return auditlog.AuditFilter(
        since=utc(form.since.data),
        until=utc(form.until.data),
        actor=(form.actor.data or "").strip() or None,
        action=(form.action.data or "").strip() or None,
        incident_id=form.incident.data,
    )


@bp.get("/audit")
@requires("viewer")
def index():  # type: ignore[no-untyped-def]
    form = AuditFilterForm(request.args)
    if not form.validate():
        problems = "; ".join(f"{form[name].label.text}: {', '.join(errors)}" for name, errors in form.errors.items())
        raise InvalidRequest(f"bad filter: {problems}")
    filters = _filters(form)
    export = request.args.get("format")
    if export == "csv":
        return _download(_csv(filters), "text/csv; charset=utf-8", "csv")
    if export == "json":
        return _download(_json(filters), "application/json", "json")
    if export:
        raise InvalidRequest("format must be csv or json")
    events, next_before = read(auditlog.page, filters, before_id=form.before.data, limit=PAGE)
    # From the newest checkpoint on: the page must not walk the whole chain on every view.
    verdict = read(audit.verify, incremental=True)
    # Only the filter's own fields go back into links: url_for() takes other names (endpoint, _method,
    # _external) as its own arguments.
    query = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}
    return render_template(
        "audit.html",
        form=form,
        events=events,
        next_before=next_before,
        verdict=verdict,
        actions=read(auditlog.known_actions),
        query=query,
    )


def _download(body: Iterator[str], mimetype: str, extension: str) -> Response:
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="failover-audit-{stamp}.{extension}"'
    return response


def _rows(filters: auditlog.AuditFilter) -> Iterator[dict[str, Any]]:
    with runtime().database.reading() as session:
        yield from auditlog.export(session, filters)


def _csv(filters: auditlog.AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(auditlog.EXPORT_COLUMNS)
    for row in _rows(filters):
        writer.writerow(
            [_cell(json.dumps(row[c], sort_keys=True) if c == "details" else row[c]) for c in auditlog.EXPORT_COLUMNS]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _json(filters: auditlog.AuditFilter) -> Iterator[str]:
    verdict = read(audit.verify, incremental=True)
    chain = {"ok": verdict.ok, "checked": verdict.checked, "bad_id": verdict.bad_id, "reason": verdict.reason}
    head = {"chain": {**chain, "since": verdict.since}}
    yield json.dumps(head)[:-1] + ', "events": ['
    first = True
    for row in _rows(filters):
        yield ("" if first else ",") + json.dumps(row, sort_keys=True)
        first = False
    yield "]}"
