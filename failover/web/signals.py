"""Inbound signals from other monitors: ``POST /webhooks/signals``, public but HMAC-signed.

The body is read raw (the signature covers the exact bytes) and handed to the
watcher; anything unsigned or malformed is audited and answered with a 4xx
naming what is wrong (see failover/sources/webhook.py for the shapes).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from failover.sources.webhook import SIGNATURE_HEADER, SignalRejected
from failover.web.views import csrf, runtime

bp = Blueprint("signals", __name__)


@bp.post("/webhooks/signals")
@csrf.exempt
def receive():  # type: ignore[no-untyped-def]
    result = runtime().detection.receive_signals(
        body=request.get_data(cache=False),
        signature=request.headers.get(SIGNATURE_HEADER),
        source=request.args.get("source"),
        remote=request.remote_addr,
    )
    return jsonify(result), 202


@bp.errorhandler(SignalRejected)
def _rejected(exc: SignalRejected):  # type: ignore[no-untyped-def]
    return jsonify(error=exc.message, status=exc.status), exc.status
