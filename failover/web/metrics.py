"""``/metrics`` in the Prometheus text format, for a bearer token (FAILOVER_METRICS_TOKEN) only.

Two parts: the counters every process on this host wrote (failover/metrics.py,
multiprocess mode) and gauges read from the database now
(failover/engine/gauges.py). Without a token configured the endpoint does not
exist (404): metrics say when an outage is being handled and how many people
there are, which is not for everyone.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from failover import metrics
from failover.clock import utcnow
from failover.engine import gauges
from failover.web.views import runtime

bp = Blueprint("metrics", __name__)


class _DatabaseGauges:
    def __init__(self, rt: Any) -> None:
        self.rt = rt

    def collect(self) -> Any:
        with self.rt.database.reading() as session:
            yield from gauges.collect(session, utcnow(), self.rt.delivery.guard.circuits())


@bp.get("/metrics")
def scrape():  # type: ignore[no-untyped-def]
    rt = runtime()
    token = rt.settings.metrics_token
    if token is None:
        return Response("not found\n", status=404, mimetype="text/plain")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return Response(
            "a bearer token is required (FAILOVER_METRICS_TOKEN)\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    database = CollectorRegistry(auto_describe=False)
    database.register(_DatabaseGauges(rt))
    body = generate_latest(
        metrics.registry(rt.settings.metrics_dir or rt.settings.data_dir / "metrics")
    ) + generate_latest(database)
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
