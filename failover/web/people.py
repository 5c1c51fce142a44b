"""The People pages: the roster (search, groups, masked details), sync status, snapshot history, CSV upload
with a preview before anything changes, and contact verification. Viewers read; admins change."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from failover import datafiles
from failover.domain import csvimport
from failover.engine import audit, people_view, verification
from failover.errors import ConfigError, InvalidRequest
from failover.web.access import actor, has_role, requires
from failover.web.views import read, runtime

bp = Blueprint("people", __name__, url_prefix="/people")
DIGEST = re.compile(r"^[0-9a-f]{64}$")


@bp.app_context_processor
def _people_card() -> dict[str, Any]:
    """The dashboard's roster line: how fresh it is and how many can be reached outside the tenant."""

    def card() -> dict[str, Any]:
        try:
            runtime().config.catalog_or_none()  # contacts.yaml into the table, as any process does when it loads it
            status = runtime().people.status()
            figures = read(verification.readiness)["all"]
        except Exception:  # not migrated yet, or the database is down: the dashboard still renders
            return {}
        return {**status, "readiness": figures}

    return {"people_card": card}


def _page(status: int = 200, preview: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    runtime().config.catalog_or_none()  # contacts.yaml into the table, as any process does when it loads it
    q = request.args.get("q", "")[:100]
    group = request.args.get("group", "")[:100]
    page = request.args.get("page", "1")
    data = read(people_view.listing, q=q, group=group, page=int(page) if page.isdigit() else 1)
    return (
        render_template(
            "people.html",
            data=data,
            q=q,
            group=group,
            groups=read(people_view.group_names),
            status=runtime().people.status(),
            history=read(people_view.history),
            readiness=read(verification.readiness),
            preview=preview,
        ),
        status,
    )


@bp.get("")
@requires("viewer")
def index():  # type: ignore[no-untyped-def]
    return _page()


@bp.get("/person/<person_id>")
@requires("viewer")
def person(person_id: str):  # type: ignore[no-untyped-def]
    reveal = request.args.get("reveal") == "1"
    if reveal and not has_role("admin"):
        abort(403)
    runtime().config.catalog_or_none()
    data = read(people_view.detail, person_id, reveal=reveal)
    if data is None:
        abort(404)
    if reveal:
        with runtime().database.transaction() as session:
            audit.record(session, action="people.revealed", actor=actor(), target_type="person", target_id=person_id)
    return render_template("person.html", person=data)


def _uploads():  # type: ignore[no-untyped-def]
    return datafiles.private_dir(runtime().settings.data_dir / "uploads")


@bp.post("/import")
@requires("admin")
def upload():  # type: ignore[no-untyped-def]
    """A CSV file: checked whole and shown as a dry run; nothing changes until the admin confirms."""
    request.max_content_length = csvimport.MAX_BYTES + 64 * 1024
    file = request.files.get("file")
    if file is None or not file.filename:
        raise InvalidRequest("choose a CSV file to upload")
    data = file.read(csvimport.MAX_BYTES + 1)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", file.filename)[:100]
    runtime().config.catalog_or_none()
    outcome, parsed = runtime().people.import_csv(data, name, actor=actor(), dry_run=True)
    if outcome is None:
        preview = {"problems": [str(p) for p in parsed.problems], "problem_count": parsed.problem_count, "name": name}
        return _page(400, preview)
    digest = hashlib.sha256(data).hexdigest()
    (_uploads() / f"{digest}.csv").write_bytes(data)
    return _page(200, {"outcome": outcome.as_dict(), "digest": digest, "name": name})


@bp.post("/import/confirm")
@requires("admin")
def confirm_import():  # type: ignore[no-untyped-def]
    digest = request.form.get("digest", "")
    if not DIGEST.match(digest):
        raise InvalidRequest("no upload to apply: upload the file again")
    path = _uploads() / f"{digest}.csv"
    if not path.is_file():
        raise InvalidRequest("this upload is gone: upload the file again")
    accept = request.form.get("accept_removals") == "1"
    outcome, parsed = runtime().people.import_csv(
        path.read_bytes(), request.form.get("name", "upload.csv")[:100], actor=actor(), accept=accept
    )
    path.unlink(missing_ok=True)
    if outcome is None:
        raise InvalidRequest(f"{parsed.problem_count} problem(s): nothing imported")
    if outcome.status == "refused":
        flash(f"Refused: {outcome.reason}. Nothing changed.", "warning")
    else:
        flash(f"Imported: {outcome.counts}; {outcome.total} people in force.", "info")
    return redirect(url_for("people.index"))


@bp.post("/verify")
@requires("admin")
def verify():  # type: ignore[no-untyped-def]
    group = request.form.get("group", "")[:100] or None
    activation_id, texts, _ = runtime().people.verify(group=group, actor=actor())
    flash(f"{texts} verification text(s) queued (activation #{activation_id}).", "info")
    return redirect(url_for("people.index"))


@bp.post("/invite")
@requires("admin")
def invite():  # type: ignore[no-untyped-def]
    group = request.form.get("group", "")[:100] or None
    activation_id, sent, _ = runtime().people.invite(group=group, actor=actor())
    flash(f"{sent} personal self-service link(s) queued (activation #{activation_id}).", "info")
    return redirect(url_for("people.index"))


@bp.post("/sync")
@requires("admin")
def sync():  # type: ignore[no-untyped-def]
    try:
        outcome = runtime().people.sync_task(actor=actor())
    except ConfigError as exc:
        raise InvalidRequest(str(exc)) from None
    level = "info" if outcome["status"] in ("applied", "unchanged") else "warning"
    flash(f"Sync {outcome['status']}: {outcome.get('reason') or outcome['counts']}", level)
    return redirect(url_for("people.index"))
