"""Flask application factory (the flaskr pattern): nothing is built at import."""

from __future__ import annotations

from typing import Any

from flask import Flask

from failover.runtime import Runtime
from failover.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or Runtime(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.flask_secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    if settings.trusted_proxies:
        # Only the hops we were told about: the client address and scheme they saw, for throttling and audit.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.extensions["failover"] = runtime

    from failover.celery_app import create_celery

    app.extensions["celery"] = create_celery(runtime)

    from failover.web import (
        access,
        account,
        admin,
        answers,
        api,
        api_status,  # noqa: F401  (its routes join the /api/v1/ blueprint)
        audit,
        auth,
        bridge_webhooks,
        console,
        detection,
        errors,
        guards,
        health,
        incident_work,
        metrics,
        notices,
        people,
        provider_webhooks,
        readiness,
        reports,
        request_ids,
        selfservice,
        status,
        statuspage,
        talkback,
        views,
    )

    request_ids.init_app(app)  # first: every later hook's log lines carry the request id
    views.init_app(app)
    errors.init_app(app)
    guards.init_app(app)  # file parts and NUL characters are a 400 before any view or the access gate runs
    # Default-deny gate: every route needs a declared role unless its path is public (see web/access.py).
    access.init_app(app, runtime=runtime, settings=settings)
    auth.init_app(app, settings=settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)  # Prometheus, for FAILOVER_METRICS_TOKEN only
    app.register_blueprint(status.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(answers.bp)
    app.register_blueprint(incident_work.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(statuspage.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(reports.bp)  # after-action reports and drills
    app.register_blueprint(admin.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(selfservice.bp)  # public: the personal link is the credential
    views.csrf.exempt(api.bp)  # bearer tokens, never cookies, for anything but GET
    app.register_blueprint(api.bp)
    app.register_blueprint(detection.signals_bp)
    app.register_blueprint(detection.watch_bp)
    app.register_blueprint(talkback.bp)  # poll panels and exports; the public "Report a problem" POST
    app.register_blueprint(provider_webhooks.bp)  # public but signed: no login, no CSRF token
    app.register_blueprint(bridge_webhooks.bp)  # the bridge line's calls and conference callbacks: signed too
    return app
