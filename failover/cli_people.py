"""`failover people ...`: import a CSV, sync from Entra ID, list the roster, send verification texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from failover.cli import Context, cli_actor, friendly, pass_ctx


@click.group()
def people() -> None:
    """The people directory (contacts.yaml, CSV imports, Entra ID users)."""


def _print_outcome(outcome: Any) -> None:
    counts = outcome.counts
    if counts:
        click.echo(
            f"added {counts.get('added', 0)}, changed {counts.get('changed', 0)}, "
            f"removed {counts.get('removed', 0)}, unchanged {counts.get('unchanged', 0)}"
        )
    for kind in ("added", "changed", "removed"):
        for row in outcome.sample.get(kind, []):
            extra = f" ({', '.join(row['fields'])})" if "fields" in row else f" {row.get('name', '')}"
            click.echo(f"  {kind[0].upper() if kind != 'changed' else '~'} {row['id']}{extra}")


@people.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--accept-removals", is_flag=True, help="Apply even if it removes more than max_removal of the people.")
@click.option("--region", default=None, help="Default region for numbers without +country (e.g. DE).")
@pass_ctx
@friendly
def people_import(ctx: Context, file: Path, dry_run: bool, accept_removals: bool, region: str | None) -> None:
    """Import people from FILE.csv: all rows or none; every bad row is printed as file:line: message."""
    from failover.services.people import read_upload

    runtime = ctx.runtime()
    runtime.config.catalog_or_none()  # contacts.yaml is in the table before the file is merged with it
    outcome, parsed = runtime.people.import_csv(
        read_upload(file), str(file), actor=cli_actor(), dry_run=dry_run, accept=accept_removals, default_region=region
    )
    if outcome is None:
        for problem in parsed.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{parsed.problem_count} problem(s); nothing imported", err=True)
        raise SystemExit(1)
    _print_outcome(outcome)
    if outcome.status == "refused":
        click.echo(f"refused: {outcome.reason}; nothing changed (--accept-removals to apply it)", err=True)
        raise SystemExit(1)
    click.echo(
        {"dry_run": "dry run: nothing changed", "unchanged": "nothing to change"}.get(
            outcome.status, f"snapshot {outcome.snapshot_id}: {outcome.total} people in force"
        )
    )


@people.command("sync")
@click.option("--accept-removals", is_flag=True, help="Apply even if it removes more than max_removal of the people.")
@pass_ctx
@friendly
def people_sync(ctx: Context, accept_removals: bool) -> None:
    """Sync people from Microsoft Graph now (delta when a deltaLink is kept, else full)."""
    runtime = ctx.runtime()
    runtime.config.catalog_or_none()
    outcome = runtime.people.sync_graph(actor=cli_actor(), accept=accept_removals)
    _print_outcome(outcome)
    if outcome.status in ("failed", "refused"):
        click.echo(f"{outcome.status}: {outcome.reason}; the roster in force is unchanged", err=True)
        raise SystemExit(1)
    click.echo(f"{outcome.status}: {outcome.total} people in force")


@people.command("list")
@click.option("--group", default=None, help="Only members of this group.")
@pass_ctx
@friendly
def people_list(ctx: Context, group: str | None) -> None:
    """The people in force (ids, names, groups; numbers masked)."""
    from failover.engine import directory
    from failover.privacy import mask_phone

    runtime = ctx.runtime()
    catalog = runtime.config.catalog()
    if group is not None:
        listed = catalog.contacts.members(group)
    else:
        with runtime.database.reading() as session:
            rows = directory.active_rows(session)
            member = directory.groups_of(session, [r.id for r in rows])
            listed = [directory.as_person(directory.record_of(r), member.get(r.id, ())) for r in rows]
    for person in listed:
        phone = mask_phone(person.phone) if person.phone else "-"
        click.echo(f"{person.id:<32} {person.name:<28} {phone:<16} {','.join(person.groups)}")
    status = runtime.people.status()
    click.echo(
        f"{len(listed)} people; roster as of {status['as_of'] or 'never'}" + (" (STALE)" if status["stale"] else "")
    )


@people.command("verify")
@click.argument("group", required=False)
@click.option("--yes", "-y", is_flag=True, help="Send without asking (scripts); otherwise a terminal asks first.")
@pass_ctx
@friendly
def people_verify(ctx: Context, group: str | None, yes: bool) -> None:
    """Text everyone in GROUP (default: everyone) "reply YES to confirm this is your number"."""
    runtime = ctx.runtime(broker=True)
    if not yes and not click.confirm(f"Send a verification SMS to {group or 'everyone'}?", default=False):
        raise SystemExit(1)
    activation_id, texts, published = runtime.people.verify(group=group, actor=cli_actor())
    queued = "" if published else " (the broker is unreachable: they go out when it is back)"
    click.echo(f"activation {activation_id}: {texts} verification text(s) queued{queued}")


@people.command("invite")
@click.argument("group", required=False)
@click.option("--yes", "-y", is_flag=True, help="Send without asking (scripts); otherwise a terminal asks first.")
@pass_ctx
@friendly
def people_invite(ctx: Context, group: str | None, yes: bool) -> None:
    """Send everyone in GROUP (default: everyone) a personal link to confirm their personal contacts."""
    runtime = ctx.runtime(broker=True)
    if not yes and not click.confirm(f"Send self-service links to {group or 'everyone'}?", default=False):
        raise SystemExit(1)
    activation_id, sent, published = runtime.people.invite(group=group, actor=cli_actor())
    queued = "" if published else " (the broker is unreachable: they go out when it is back)"
    click.echo(f"activation {activation_id}: {sent} personal link(s) queued{queued}")
