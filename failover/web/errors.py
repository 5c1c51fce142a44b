"""Errors become clear 4xx answers: JSON for JSON clients, a page for people. Never a 500 for bad input."""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from failover.errors import ApprovalError, ConfigError, Conflict, InvalidRequest, NotFound


def wants_json() -> bool:
    return (
        request.path.startswith(("/api/", "/webhooks/"))
        or request.path.endswith(".json")
        or request.accept_mimetypes.best == "application/json"
    )


def _answer(status: int, message: str):  # type: ignore[no-untyped-def]
    if wants_json():
        return jsonify(error=message, status=status), status
    return render_template("error.html", status=status, message=message), status


def answer(status: int, message: str):  # type: ignore[no-untyped-def]
    """An error as JSON for JSON clients and /api/, as a page for people (for other modules)."""
    return _answer(status, message)


def init_app(app: Flask) -> None:
    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):  # type: ignore[no-untyped-def]
        return _answer(404, str(exc))

    @app.errorhandler(ApprovalError)
    def _forbidden(exc: ApprovalError):  # type: ignore[no-untyped-def]
        return _answer(403, str(exc))

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict):  # type: ignore[no-untyped-def]
        return _answer(409, str(exc))

    @app.errorhandler(InvalidRequest)
    def _invalid(exc: InvalidRequest):  # type: ignore[no-untyped-def]
        return _answer(400, str(exc))

    @app.errorhandler(ConfigError)
    def _config(exc: ConfigError):  # type: ignore[no-untyped-def]
        # The request was fine; the configuration on disk is not. Say so plainly.
        return _answer(503, f"configuration problem: {exc}")

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return _answer(400, f"form expired or forged ({exc.description}); reload the page and try again")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        response = make_response(_answer(exc.code or 500, exc.description or exc.name))
        # The exception's own headers (Allow on a 405, Retry-After, WWW-Authenticate), not its HTML body's type.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
