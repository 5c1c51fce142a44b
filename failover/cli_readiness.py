"""``failover doctor`` and ``failover canary``: readiness from the command line (see failover/engine/doctor.py)."""

from __future__ import annotations

import json

import click

from failover.cli import Context, friendly, pass_ctx
from failover.domain.readiness import Report, Result

MARK = {Result.OK: "ok", Result.WARN: "WARN", Result.FAIL: "FAIL", Result.SKIPPED: "skip"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@click.option("--strict", is_flag=True, help="Exit 2 when there are warnings (and no failures).")
@click.option("--only", multiple=True, help="Only checks whose id starts with this (service.worker, twilio).")
@pass_ctx
@friendly
def doctor(ctx: Context, as_json: bool, strict: bool, only: tuple[str, ...]) -> None:
    """Check that failover would work now: providers, independence from Microsoft, access, the service.

    Exit 0 when all is good, 1 on any failure, 2 on warnings only with --strict.
    """
    report = ctx.runtime().readiness.report(only=only)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    raise SystemExit(report.exit_code(strict=strict))


def _print(report: Report) -> None:
    for area, findings in report.areas():
        click.echo(click.style(area, bold=True))
        for finding in findings:
            colour = {Result.FAIL: "red", Result.WARN: "yellow", Result.OK: "green"}.get(finding.result)
            mark = click.style(f"{MARK[finding.result]:<4}", fg=colour)
            click.echo(f"  {mark}  {finding.what}" + (f": {finding.detail}" if finding.detail else ""))
            for item in finding.items:
                click.echo(f"          - {item}")
            if finding.fix and finding.result in (Result.FAIL, Result.WARN):
                click.echo(f"          fix: {finding.fix}")
    counts = report.counts
    click.echo(
        f"\n{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s), {counts['skipped']} skipped"
    )


@click.group()
def canary() -> None:
    """End-to-end canaries: "failover canary, reply OK" to designated numbers and addresses."""


@canary.command("run")
@pass_ctx
@friendly
def canary_run(ctx: Context) -> None:
    """Send a round of canaries now (the beat does it every FAILOVER_CANARY_INTERVAL seconds)."""
    targets = ctx.settings.canary_targets
    if not any(targets.values()):
        click.echo("error: no canary targets: set FAILOVER_CANARY_SMS and/or FAILOVER_CANARY_EMAIL", err=True)
        raise SystemExit(1)
    result = ctx.runtime().readiness.canary_start()
    click.echo(f"{len(result.started)} canary message(s) sent, {len(result.failed)} refused at once")
    click.echo("the beat settles them as receipts arrive; see `failover doctor` or the Readiness page")
    raise SystemExit(1 if result.failed else 0)


@canary.command("check")
@pass_ctx
@friendly
def canary_check(ctx: Context) -> None:
    """Settle waiting canaries now (receipt arrived, or deadline passed) and alert about failures."""
    result = ctx.runtime().readiness.canary_check()
    click.echo(f"{len(result.failed)} canary failure(s), {result.alerts} alert(s) sent")
    raise SystemExit(1 if result.failed else 0)
