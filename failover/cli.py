"""The ``failover`` command. Each command parses, calls one use case, and prints the outcome."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from failover.domain.roles import ROLES
from failover.errors import ConfigError, ConfigProblems, FailoverError
from failover.logs import CONFIG_LOGGER
from failover.settings import Settings, load_env_file, load_settings

if TYPE_CHECKING:  # built lazily: `failover --help` and `runbooks check` need no database
    from failover.celery_app import FailoverCelery
    from failover.runtime import Runtime
    from failover.services.config import ConfigReport


ROLE_NAMES = [role.value for role in ROLES]


class Context:
    """Settings are read once per command; the runtime is built only when needed."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def runtime(self, *, broker: bool = False) -> Runtime:
        if self._runtime is None:
            from failover.runtime import Runtime

            self._runtime = Runtime(self.settings)  # closed by main() when the command ends
            if broker:
                from failover.celery_app import create_celery

                create_celery(self._runtime)
        return self._runtime

    def close(self) -> None:
        """Release the database connections a command opened (run when the command ends)."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Known errors end the command with their message and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigProblems as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise SystemExit(1) from None
        except FailoverError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None

    return wrapper


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def warn_config(runtime: Runtime) -> ConfigReport:
    """Each broken configuration file, its file:line problems and what is in force instead, on stderr."""
    report = runtime.config.report()
    for item in report.broken:
        for problem in item.problems:
            click.echo(f"warning: {problem}", err=True)
        click.echo(f"warning: {item.file}: {item.outcome()}", err=True)
    return report


@click.group()
@click.version_option(package_name="failover")
@click.pass_context
def main(click_ctx: click.Context) -> None:
    """Contingency communication failover for Microsoft 365 outages."""
    load_env_file()  # .env in the working directory, under the real environment
    # One-shot commands print broken files as warnings (warn_config); without this, Python's last-resort
    # handler would print the same lines again. Processes that configure logging still log them.
    logging.getLogger(CONFIG_LOGGER).addHandler(logging.NullHandler())
    click_ctx.call_on_close(click_ctx.ensure_object(Context).close)


# -- set-up -----------------------------------------------------------------


@main.command()
@click.option("--demo", is_flag=True, help="Also install the demo contacts and runbooks if none exist.")
@pass_ctx
@friendly
def init(ctx: Context, demo: bool) -> None:
    """Create the data directory and database schema (safe to run again)."""
    from failover.db import migrate
    from failover.engine import audit as audit_log

    settings = ctx.settings
    if demo:
        for name, target in (("config", settings.config_dir), ("runbooks", settings.runbooks_dir)):
            if _copy_demo(name, target):
                click.echo(f"installed demo {name} in {target}")
    runtime = ctx.runtime()
    migrate(runtime.database)
    with runtime.database.transaction() as session:
        if audit_log.start_keyed(session):
            click.echo("audit log: signed with FAILOVER_AUDIT_KEY from here on")
    click.echo(f"database ready: {_redact(settings.sqlalchemy_url)}")
    _seal_totp_secrets(runtime)
    # Problems are shown now, with file:line; they do not stop start-up (the last good versions stay in force).
    report = warn_config(runtime)
    catalog = runtime.config.catalog_or_none()
    if catalog is not None:
        state = "config ok" if report.ok else "config in force"
        click.echo(f"{state}: {len(catalog.runbooks)} runbook(s), {len(catalog.contacts.people)} contact(s)")
    detection = runtime.config.detection_loaded().config
    if detection is not None:
        click.echo(_detection_summary(detection))
    if demo:
        _demo_admin(runtime, settings)


def _seal_totp_secrets(runtime: Runtime) -> None:
    """Seal clear TOTP secrets (from before 0009) and reseal those under a key that is no longer first."""
    from failover.engine import users

    with runtime.database.transaction() as session:
        sealed, resealed = users.seal_totp_secrets(session, box=runtime.accounts.totp_box)
    for count, verb in ((sealed, "sealed"), (resealed, "resealed")):
        if count:
            click.echo(f"{verb} {count} TOTP secret(s) under the first FAILOVER_TOTP_KEY")


DEMO_ADMIN = "admin"


def demo_password_file(settings: Settings) -> Path:
    return settings.data_dir / "demo-admin-password"


def _demo_admin(runtime: Runtime, settings: Settings) -> None:
    """With --demo and no account yet: an admin with a generated password, shown once and kept 0600.

    Nothing configured is printed: the password is made here, for this demo, and
    `failover user passwd admin` replaces it.
    """
    import secrets

    from failover.engine import users

    with runtime.database.transaction() as session:
        if users.count(session):
            return
        password = secrets.token_urlsafe(12)
        users.add(session, username=DEMO_ADMIN, password=password, role="admin", actor=cli_actor())
    path = demo_password_file(settings)
    path.unlink(missing_ok=True)
    # Created 0600 from the start: never readable by others, not even for a moment.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(password + "\n")
    click.echo(f"demo console login: {DEMO_ADMIN} / {password}")
    click.echo(f"  (kept in {path} until you change it: failover user passwd {DEMO_ADMIN})")


def _copy_demo(name: str, target: Path) -> bool:
    if target.exists() and any(target.iterdir()):
        return False
    source = _demo_source(name)
    if source is None or source.resolve() == target.resolve():
        return False
    shutil.copytree(source, target, dirs_exist_ok=True)
    return True


def _demo_source(name: str) -> Path | None:
    packaged = Path(__file__).parent / "_demo" / name
    checkout = Path(__file__).parent.parent / name
    for candidate in (packaged, checkout):
        if candidate.is_dir():
            return candidate
    return None


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- processes ---------------------------------------------------------------


@main.command()
@pass_ctx
@friendly
def web(ctx: Context) -> None:
    """Serve the console, status page and webhooks (gunicorn)."""
    from gunicorn.app.base import Application

    from failover import observability
    from failover.web import create_app

    settings = ctx.settings
    observability.start(settings)
    ctx.runtime().audit.check_key()  # a process with another key must not start writing the chain
    ctx.close()  # the app builds its own runtime in each gunicorn worker

    class Server(Application):  # type: ignore[misc]
        def load_config(self) -> None:
            # failover/web/gunicorn_conf.py, then FAILOVER_GUNICORN_CONFIG, then GUNICORN_CMD_ARGS: the last wins.
            self.load_config_from_module_name_or_filename("python:failover.web.gunicorn_conf")
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.web_workers)
            self.cfg.set("threads", settings.web_threads)
            if settings.gunicorn_config:
                self.load_config_from_module_name_or_filename(settings.gunicorn_config)
            parser = self.cfg.parser()
            for key, value in vars(parser.parse_args(self.cfg.get_cmd_args_from_env())).items():
                if value is not None and key in self.cfg.settings:
                    self.cfg.set(key.lower(), value)

        def load(self) -> Any:
            return create_app(settings)

    click.echo(f"failover web on http://{settings.host}:{settings.port}/")
    Server().run()


@main.command()
@click.option("--concurrency", type=int, default=None, help="Tasks run at once (default FAILOVER_WORKER_CONCURRENCY).")
@click.option("--hostname", default=None, help="Celery node name.")
@pass_ctx
@friendly
def worker(ctx: Context, concurrency: int | None, hostname: str | None) -> None:
    """Run a Celery worker that sends messages."""
    from failover import observability
    from failover.celery_app import CONTROL_QUEUE, SEND_QUEUE

    observability.start(ctx.settings, celery=True)
    runtime = ctx.runtime(broker=True)
    runtime.audit.check_key()
    celery = _celery(runtime)
    runtime.warm()
    runtime.pulse.mark(30)  # a (re)started worker may have work waiting: beat sweeps at full pace for a while
    argv = [
        "worker",
        "--loglevel",
        ctx.settings.log_level,
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency or ctx.settings.worker_concurrency),
        "--without-gossip",
        "--queues",
        f"{SEND_QUEUE},{CONTROL_QUEUE}",
        "--without-mingle",
    ]
    if hostname:
        argv += ["--hostname", hostname]
    if ctx.settings.log_format == "json":
        argv = ["--quiet", *argv]  # no banner: every line on stderr is one JSON object
    celery.worker_main(argv)


@main.command()
@pass_ctx
@friendly
def beat(ctx: Context) -> None:
    """Run the scheduler. Exactly one per installation: a second one exits at once."""
    from failover import heartbeats, locks, observability

    settings = ctx.settings
    observability.start(settings, beat=True)
    # Loading logs each broken file with file:line. Beat runs regardless: a broken detection.yaml runs on its
    # last good version (with none, nothing is watched), and the sweeps and escalations do not depend on it.
    ctx.runtime().config.report()
    ctx.runtime().audit.check_key()
    url = settings.shared_redis_url
    lock: locks.Lock = (
        locks.RedisLock(url, "failover:beat", on_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
        if url
        else locks.FileLock(settings.data_dir / "beat.lock")
    )
    try:
        lock.acquire()
    except locks.LockHeld as exc:
        click.echo(f"error: another beat is running ({exc}); exactly one may run", err=True)
        raise SystemExit(1) from None
    try:
        celery = _celery(ctx.runtime(broker=True))
        heartbeats.install_beat(ctx.runtime())
        celery.start(["beat", "--loglevel", settings.log_level])
    finally:
        lock.release()


@main.command("heartbeat-check")
@click.argument("process", type=click.Choice(["worker", "beat"]))
@click.option("--max-age", type=float, default=120.0, show_default=True, help="Seconds a heartbeat may be old.")
@pass_ctx
def heartbeat_check(ctx: Context, process: str, max_age: float) -> None:
    """Exit 0 if this container's worker or beat beat within --max-age seconds (docker compose health checks)."""
    from failover.observability import heartbeat_age

    age = heartbeat_age(ctx.settings.data_dir, process)
    if age is None or age > max_age:
        click.echo(f"{process}: no heartbeat {'yet' if age is None else f'for {age:.0f}s'}", err=True)
        raise SystemExit(1)
    click.echo(f"{process}: beat {age:.0f}s ago")


def _celery(runtime: Runtime) -> FailoverCelery:
    from failover.celery_app import create_celery

    return create_celery(runtime)


@main.command()
@click.option("--no-init", is_flag=True, help="Do not run init first.")
@pass_ctx
@friendly
def up(ctx: Context, no_init: bool) -> None:
    """Run web, worker and beat together; Ctrl-C stops all three."""
    settings = ctx.settings
    if not no_init:
        subprocess.run([sys.executable, "-m", "failover", "init", "--demo"], check=True)
    from failover import metrics

    metrics.setup(
        settings.data_dir, settings.metrics_dir, fresh=True
    )  # one metrics directory for the three children, emptied now
    children = {
        name: subprocess.Popen([sys.executable, "-m", "failover", name], start_new_session=True)
        for name in ("web", "worker", "beat")
    }
    click.echo(
        f"failover is up: console http://{settings.host}:{settings.port}/  "
        f"status page http://{settings.host}:{settings.port}/status  (Ctrl-C stops)"
    )
    if demo_password_file(settings).exists():
        click.echo(f"log in as {DEMO_ADMIN}; the demo password is in {demo_password_file(settings)}")
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                click.echo(f"{name} exited with {child.returncode}; stopping the others", err=True)
                exit_code, stopping = child.returncode or 1, True
                break
        time.sleep(0.3)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    click.echo("failover stopped")
    raise SystemExit(exit_code)


# -- runbooks and activation --------------------------------------------------


@main.group()
def runbooks() -> None:
    """Runbook commands."""


@runbooks.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@pass_ctx
def runbooks_check(ctx: Context, directory: Path | None) -> None:
    """Validate contacts, runbooks and templates; print file:line: message for each problem."""
    from failover.domain import runbooks as loader

    try:
        settings = ctx.settings
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    from failover.domain import statuspage
    from failover.domain.detection import config as detection

    catalog, problems = loader.check(settings.config_dir, directory or settings.runbooks_dir)
    detection_config, detection_problems = detection.check(settings.config_dir)
    status_problems = statuspage.check(settings.config_dir)  # config/status.yaml: page, components, publish
    problems = sorted([*problems, *detection_problems, *status_problems], key=lambda p: (p.file, p.line, p.message))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems or catalog is None or detection_config is None:
        click.echo(f"{len(problems)} problem(s)", err=True)
        raise SystemExit(1)
    click.echo(
        f"ok: {len(catalog.runbooks)} runbook(s), {len(catalog.contacts.people)} contact(s), "
        f"{len(catalog.contacts.groups)} group(s)"
    )
    click.echo(_detection_summary(detection_config))
    _credentials(settings, catalog)


def _credentials(settings: Settings, catalog: Any) -> None:
    """Which provider carries each channel, and the credentials the runbooks need that are not set."""
    import os

    from failover.domain import credentials

    providers = credentials.Providers(
        sms=settings.sms_provider_order,
        voice=settings.twilio_enabled,
        email=settings.sendgrid_enabled,
        vonage_signature=settings.vonage_signature_secret is not None,
    )
    click.echo(credentials.summary(providers, catalog))
    for warning in credentials.warnings(catalog, providers, os.environ):
        click.echo(f"warning: {warning}", err=True)


def _detection_summary(config: Any) -> str:
    if not config.watch:
        return "detection: nothing watched (no config/detection.yaml, or an empty watch:)"
    return (
        f"detection ok: watching {len(config.watch)} service(s) with {len(config.active_probes)} probe(s); "
        f"quorum {config.confirm.probe_quorum}, hold {config.confirm.hold}, recover_hold {config.confirm.recover_hold}"
    )


@main.command()
@click.argument("runbook")
@click.option("--reason", default=None, help="Internal note: why (audit log only, never sent).")
@click.option("--message", default=None, help="Text shown to recipients (templates' activation.message).")
@click.option("--dry-run", is_flag=True, help="Show the preview, send nothing.")
@click.option("--drill", is_flag=True, help="Prefix [DRILL], drill group only, status page untouched.")
@click.option("--service", "services", multiple=True, help="Affected service (repeatable).")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (scripts); otherwise a terminal asks first.")
@pass_ctx
@friendly
def activate(
    ctx: Context,
    runbook: str,
    reason: str | None,
    message: str | None,
    dry_run: bool,
    drill: bool,
    services: tuple[str, ...],
    yes: bool,
) -> None:
    """Preview what activating RUNBOOK sends, then (after you say yes) send it."""
    request = {
        "runbook_ids": [runbook],
        "reason": reason or f"activated from the command line by {getpass.getuser()}",
        "actor": cli_actor(),
        "services": services,
        "drill": drill,
        "message": message,
    }
    runtime = ctx.runtime(broker=not dry_run)
    warn_config(runtime)
    preview = runtime.activations.preview(**request)
    if dry_run:
        _print_preview(preview, "dry run: nothing sent")
        return
    _confirm(preview, yes, lambda: runtime.activations.preview(**request), "Send these messages now?")
    accepted, broker_ok = runtime.activations.trigger(**request)
    for item in accepted:
        counts = ", ".join(f"{k}: {v}" for k, v in item.counts.items()) or "nothing to send"
        click.echo(
            f"activation {item.activation_id} ({item.state}) for incident {item.incident_id}: {counts}"
            + (f"; {item.skipped} skipped" if item.skipped else "")
        )
    if not broker_ok:
        click.echo("queued, broker unreachable: the sweep sends it when the broker is back", err=True)


def _interactive() -> bool:
    """Whether a person can answer a question here (both ends are a terminal)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(preview: Any, yes: bool, again: Callable[[], Any], question: str) -> None:
    """Show the preview and ask, as the console does; ``--yes`` skips the question, nothing else does.

    The answer covers what was shown: if the preview changed meanwhile (contacts
    or templates), it is shown again and asked again.
    """
    _print_preview(preview, "preview: nothing sent yet")
    if yes:
        return
    if not _interactive():
        raise FailoverError("not a terminal, so nobody can confirm: nothing sent. Pass --yes to send from a script.")
    while True:
        if not click.confirm(question, default=False):
            click.echo("nothing sent")
            raise SystemExit(1)
        current = again()
        if current.fingerprint == preview.fingerprint:
            return
        click.echo("what would be sent changed since the preview (contacts or templates):")
        preview = current
        _print_preview(preview, "preview: nothing sent yet")


def _print_preview(preview: Any, header: str) -> None:
    """The preview as text: the same content as the console's (counts, every text, transport, cost, skipped)."""
    from failover.domain.labels import transport_name

    click.echo(f"{header} (preview {preview.fingerprint})")
    for channel, count in preview.counts.items():
        click.echo(f"  {channel}: {count} recipient(s)")
    for channel in preview.outbox_only:
        click.echo(f"  WARNING: {channel} goes to the outbox only: nobody would receive it", err=True)
    for section in preview.runbooks:
        wait = " - waits for a second operator" if section.needs_approval else ""
        click.echo(f"== {section.title} ({section.runbook_id}){wait}")
        for step in section.steps:
            groups = ", ".join(f"{g}: {n}" for g, n in step.groups.items())
            click.echo(
                f"--- {step.label}: {step.recipients} recipient(s) via {transport_name(step.transport)}"
                + (f" ({groups})" if groups else "")
            )
            if len(step.languages) > 1:
                click.echo("  by language: " + ", ".join(f"{lang}: {n}" for lang, n in step.languages.items()))
            for text in step.texts:
                if len(step.texts) > 1:
                    click.echo(f"[{text.recipients} recipient(s) get:]")
                if text.subject:
                    click.echo(f"{'Title' if step.channel == 'status' else 'Subject'}: {text.subject}")
                click.echo(text.body)
                if text.sms:
                    click.echo(
                        f"  ({text.sms.segments} segment(s), {text.sms.encoding}, {text.sms.characters} characters)"
                    )
    cost = preview.cost
    total = f"{cost.currency} {cost.total:.4f}" if cost.total is not None else "price not configured"
    click.echo(f"cost: {cost.sms_segments} SMS segment(s), {cost.emails} email(s): {total}")
    if preview.handout is not None:
        click.echo(f"reaching phones: {preview.handout.text}")
    if preview.skipped:
        click.echo(f"skipped: {len(preview.skipped)}")
        for skipped in preview.skipped:
            click.echo(f"  {skipped.person_id} ({skipped.label}): {skipped.reason}")


@main.command()
@click.argument("incident", type=int)
@click.option("--note", default="", help="Why it is over (audit log only).")
@click.option("--all-clear-text", default=None, help="Say this in the all-clear instead of the runbooks' texts.")
@click.option("--no-all-clear", is_flag=True, help="Resolve without sending any all-clear (audited as skipped).")
@click.option("--yes", "-y", is_flag=True, help="Stand down without asking (scripts); otherwise a terminal asks first.")
@pass_ctx
@friendly
def resolve(ctx: Context, incident: int, note: str, all_clear_text: str | None, no_all_clear: bool, yes: bool) -> None:
    """Show the all-clear INCIDENT's runbooks send, then (after you say yes) resolve it and send it once.

    No configuration file needs to load: an all-clear whose runbook does not load is left out, and audited.
    """
    runtime = ctx.runtime(broker=True)
    warn_config(runtime)  # an all-clear whose runbook does not load is left out, and audited
    choice: dict[str, Any] = {"all_clear": not no_all_clear, "override": all_clear_text}

    def plan() -> Any:
        stand_down = runtime.activations.stand_down_preview(incident_id=incident, actor=cli_actor(), **choice)
        if stand_down.cancels:
            waiting = ", ".join(str(n) for n in stand_down.cancels)
            click.echo(f"activation(s) {waiting} still await approval and will be withdrawn")
        return stand_down.preview

    _confirm(plan(), yes, plan, f"Resolve incident {incident} and send this all-clear?")
    accepted, broker_ok = runtime.activations.resolve(incident_id=incident, actor=cli_actor(), note=note, **choice)
    click.echo(f"incident {incident} resolved; {len(accepted)} all-clear activation(s) queued")
    if not broker_ok:
        click.echo("queued, broker unreachable: the sweep sends it when the broker is back", err=True)


# -- outage detection --------------------------------------------------------------


@main.group()
def watch() -> None:
    """Outage detection: what the watcher sees, and confirming an outage by hand."""


@watch.command("status")
@pass_ctx
@friendly
def watch_status(ctx: Context) -> None:
    """Each watched service's state, why, and its incident."""
    warn_config(ctx.runtime())
    data = ctx.runtime().detection.overview()
    if data["problems"]:
        raise ConfigError(f"detection.yaml has problems:\n{data['problems']}")
    graph = data["graph"]["state"] or ("not polled yet" if data["graph_configured"] else "not configured")
    click.echo(f"graph: {graph}")
    for service in data["services"]:
        incident = f" incident {service['incident_id']}" if service["incident_id"] else ""
        click.echo(f"{service['service']}: {service['phase']}{incident} - {service['reason'] or 'no readings yet'}")


@watch.command("confirm")
@click.argument("service")
@click.option("--reason", required=True, help="Why you know it is down (audited, shown on the dashboard).")
@click.option("--yes", "-y", is_flag=True, help="Confirm without asking (scripts); otherwise a terminal asks first.")
@pass_ctx
@friendly
def watch_confirm(ctx: Context, service: str, reason: str, yes: bool) -> None:
    """Confirm an outage of SERVICE by hand: activates its runbooks; only `failover resolve` ends it."""
    runtime = ctx.runtime(broker=True)

    def plan() -> Any:
        confirm = runtime.detection.confirm_preview(service=service, reason=reason)
        where = f"joins incident {confirm.joins}" if confirm.joins else f"opens the incident '{confirm.title}'"
        click.echo(f"confirming {confirm.service} {where}")
        return confirm.preview

    _confirm(plan(), yes, plan, f"Confirm the outage of {service} and send this?")
    result = runtime.detection.confirm_outage(service=service, actor=cli_actor(), reason=reason)
    if result["opened"] is not None:
        click.echo(f"incident {result['opened']} opened; {len(result['activations'])} activation(s)")
    else:
        click.echo("; ".join(result["transitions"]) or f"{service} is already part of an open incident")
    if not result["broker_ok"]:
        click.echo("queued, broker unreachable: the sweep sends it when the broker is back", err=True)


# -- audit, status, users ----------------------------------------------------------


@main.group()
def audit() -> None:
    """Audit log commands."""


@audit.command("verify")
@click.option(
    "--checkpoints",
    "files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A checkpoint file kept elsewhere (a saved e-mail's JSON, a published copy); repeatable.",
)
@pass_ctx
@friendly
def audit_verify(ctx: Context, files: tuple[Path, ...]) -> None:
    """Check the whole chain, then compare it with the newest checkpoints kept outside the database.

    Exit 1 naming the first bad event, a truncation (events dropped and the
    head moved back) or a rewrite that the checkpoints expose.
    """
    from failover import anchors
    from failover.engine import audit as audit_log

    runtime = ctx.runtime()
    sources = [directory / anchors.FILE_NAME for directory in ctx.settings.checkpoint_dirs]
    reads = {path: anchors.read_file(path) for path in [*sources, *files] if path.exists() or path in files}
    problems = [problem for read in reads.values() for problem in read.problems]
    newest = {path: read.newest for path, read in reads.items() if read.newest is not None}
    with runtime.database.reading() as session:
        verdict = audit_log.verify(session)
        problems += audit_log.check_anchors(session, newest.values())
    click.echo(str(verdict), err=not verdict.ok)
    for path, checkpoint in newest.items():
        click.echo(f"checkpoint of {audit_log.iso(checkpoint.at)} ({checkpoint.seq} events) from {path}")
    if not newest:
        click.echo("no checkpoint found: dropped newest events cannot be detected (beat writes them)", err=True)
    for problem in problems:
        click.echo(f"anchor: {problem}", err=True)
    if not verdict.ok or problems:
        raise SystemExit(1)


@audit.command("checkpoint")
@pass_ctx
@friendly
def audit_checkpoint(ctx: Context) -> None:
    """Verify from the last checkpoint and write a new one to every anchor now (beat does it on a schedule)."""
    result = ctx.runtime().audit.checkpoint()
    if result["written"]:
        click.echo(f"checkpoint at event {result['seq']} stored in: {', '.join(result['sinks'])}")
    else:
        click.echo(f"no checkpoint written: {result['verdict']}")


@main.group()
def status() -> None:
    """Status page commands."""


@status.command("export")
@click.argument("outdir", type=click.Path(path_type=Path, file_okay=False))
@pass_ctx
@friendly
def status_export(ctx: Context, outdir: Path) -> None:
    """Write the status page's static snapshot (index.html, JSON, feeds, badge) to OUTDIR for outside hosting."""
    counts = ctx.runtime().status.export(outdir)
    _export_checkpoint(ctx.runtime(), outdir)
    click.echo(f"status page written to {outdir} ({counts['written']} files changed, {counts['deleted']} removed)")


@status.command("publish")
@pass_ctx
@friendly
def status_publish(ctx: Context) -> None:
    """Publish the snapshot to every target in config/status.yaml now (beat does it on every change)."""
    outcomes = ctx.runtime().status.publish(force=True)
    if not outcomes:
        click.echo("no publish targets configured (config/status.yaml, publish:)")
    for outcome in outcomes:
        if outcome.ok:
            click.echo(f"{outcome.target}: revision {outcome.revision} published {dict(outcome.counts or {})}")
        else:
            click.echo(f"{outcome.target}: NOT published: {outcome.error}")
    if any(not o.ok for o in outcomes):
        raise SystemExit(1)


def _export_checkpoint(runtime: Runtime, outdir: Path) -> None:
    """The newest signed audit checkpoint goes out with the status page: one more copy outside the database."""
    import json

    from failover.engine import audit as audit_log

    with runtime.database.reading() as session:
        checkpoint = audit_log.latest_checkpoint(session)
    if checkpoint is not None:
        (outdir / "audit-checkpoint.json").write_text(json.dumps(checkpoint.as_json(), sort_keys=True) + "\n")


@main.group()
def user() -> None:
    """Console accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
@friendly
def user_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create a local account (never depends on Microsoft sign-in)."""
    from failover.engine import users

    password = _read_password(password_stdin)
    with ctx.runtime().database.transaction() as session:
        users.add(session, username=name, password=password, role=role, actor=cli_actor())
    click.echo(f"user {name} added with role {role}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
@friendly
def user_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set NAME's password (every session of that account ends)."""
    from failover.engine import users

    password = _read_password(password_stdin)
    with ctx.runtime().database.transaction() as session:
        users.set_password(session, username=name, password=password, actor=cli_actor())
    if name == DEMO_ADMIN:
        demo_password_file(ctx.settings).unlink(missing_ok=True)
    click.echo(f"password of {name} changed")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@pass_ctx
@friendly
def user_disable(ctx: Context, name: str, enable: bool) -> None:
    """Disable NAME: no login, and their sessions end at once."""
    from failover.engine import users

    with ctx.runtime().database.transaction() as session:
        users.set_disabled(session, username=name, disabled=not enable, actor=cli_actor())
    click.echo(f"user {name} {'enabled' if enable else 'disabled'}")


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@pass_ctx
@friendly
def user_role(ctx: Context, name: str, role: str) -> None:
    """Give NAME another role (their sessions end; they log in again)."""
    from failover.engine import users

    with ctx.runtime().database.transaction() as session:
        users.set_role(session, username=name, role=role, actor=cli_actor())
    click.echo(f"user {name} is now {role}")


@user.command("contact")
@click.argument("name")
@click.argument("person", required=False)
@pass_ctx
@friendly
def user_contact(ctx: Context, name: str, person: str | None) -> None:
    """Link NAME to PERSON of contacts.yaml: their phone is paged by SMS when an approval waits (no PERSON: unlink)."""
    from failover.engine import users

    runtime = ctx.runtime()
    if person is not None:
        found = runtime.config.catalog().contacts.person(person)
        if found is None:
            raise FailoverError(f"no person '{person}' in contacts.yaml")
        if not found.phone:
            click.echo(f"warning: {person} has no phone number, so approval pages cannot reach them", err=True)
    with runtime.database.transaction() as session:
        users.set_contact(session, username=name, contact_id=person, actor=cli_actor())
    click.echo(f"user {name} linked to {person}" if person else f"user {name} linked to no contact")


@user.command("reset-totp")
@click.argument("name")
@pass_ctx
@friendly
def user_reset_totp(ctx: Context, name: str) -> None:
    """Remove NAME's second factor (lost phone; their sessions end); they can enrol again after logging in."""
    from failover.engine import users

    with ctx.runtime().database.transaction() as session:
        users.reset_totp(session, username=name, actor=cli_actor())
    click.echo(f"two-step login of {name} removed")


@user.command("phone")
@click.argument("name")
@click.argument("phone", required=False)
@click.option("--pin-stdin", is_flag=True, help="Read the PIN from standard input.")
@click.option("--remove", is_flag=True, help="Unregister NAME's phone instead.")
@pass_ctx
@friendly
def user_phone(ctx: Context, name: str, phone: str | None, pin_stdin: bool, remove: bool) -> None:
    """Register PHONE and a PIN for activation by SMS (RUN <runbook> <PIN>); registering again unlocks it."""
    from failover.engine import phone_activation

    with ctx.runtime().database.transaction() as session:
        if remove:
            done = phone_activation.unregister(session, username=name, actor=cli_actor())
            click.echo(f"phone of {name} unregistered" if done else f"{name} had no phone registered")
            return
        if not phone:
            raise FailoverError("give the phone number (E.164, such as +12025550101), or --remove")
        if pin_stdin:
            pin = sys.stdin.readline().strip()
        else:
            pin = str(click.prompt("PIN (4-12 digits)", hide_input=True, confirmation_prompt=True))
        phone_activation.register(session, username=name, phone=phone, pin=pin, actor=cli_actor())
    click.echo(f"phone of {name} registered: text RUN <runbook> <PIN>, then your authenticator code")


@user.command("list")
@pass_ctx
@friendly
def user_list(ctx: Context) -> None:
    """List console accounts."""
    from failover.engine import users

    with ctx.runtime().database.reading() as session:
        accounts = users.list_accounts(session)
    for account in accounts:
        flags = ", ".join(f for f, on in (("totp", account["totp"]), ("disabled", account["disabled"])) if on)
        if account["contact"]:
            flags = ", ".join(x for x in (f"contact {account['contact']}", flags) if x)
        click.echo(f"{account['username']:<24} {account['role']:<9} {flags}".rstrip())


@main.group()
def token() -> None:
    """API bearer tokens."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--user", "owner", required=True, help="The console user it acts for (never with more than their role).")
@click.option("--days", type=int, default=90, show_default=True, help="Days until it expires (1-366).")
@pass_ctx
@friendly
def token_create(ctx: Context, name: str, role: str, owner: str, days: int) -> None:
    """Create a token acting for a user; it is printed once and only its hash is kept."""
    from failover.engine import tokens

    with ctx.runtime().database.transaction() as session:
        token_id, secret = tokens.create(session, name=name, role=role, days=days, actor=cli_actor(), owner=owner)
    click.echo(f"token {token_id} ({name}, {role} for {owner}, {days} days): {secret}")


@token.command("list")
@pass_ctx
@friendly
def token_list(ctx: Context) -> None:
    """List tokens (never the tokens themselves)."""
    from failover.engine import tokens

    with ctx.runtime().database.reading() as session:
        rows = tokens.list_tokens(session)
    for row in rows:
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        owner = row["owner"] or "-"
        click.echo(f"{row['id']:>4} {row['name']:<24} {row['role']:<9} {owner:<16} {row['prefix']}... {state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
@friendly
def token_revoke(ctx: Context, token_id: int) -> None:
    """Revoke a token at once."""
    from failover.engine import tokens

    with ctx.runtime().database.transaction() as session:
        tokens.revoke(session, token_id=token_id, actor=cli_actor())
    click.echo(f"token {token_id} revoked")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


# -- readiness: doctor and canaries (failover/cli_readiness.py) ---------------------------

from failover import cli_readiness  # noqa: E402  (it needs the Context and decorators above)

main.add_command(cli_readiness.doctor)
main.add_command(cli_readiness.canary)
from failover.cli_people import people  # noqa: E402  - the people group lives in its own module

main.add_command(people)
