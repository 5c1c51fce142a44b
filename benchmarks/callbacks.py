"""Callback ingestion: signed Twilio status callbacks posted to the production web as fast as it takes them.

A production installation (PostgreSQL, Redis, two workers, beat, and the web
under gunicorn) first sends ``rows`` SMS to the fake Twilio with no latency,
so that there are real ``sent`` ledger rows with real MessageSids. Then
``clients`` concurrent clients with keep-alive connections (threads in two
processes, plain ``http.client`` so that the load generator costs little CPU)
post ``per_row`` status callbacks for each row (``queued``, ``sent``,
``delivered``, in that order per row), each signed by the twilio SDK's
``RequestValidator`` over FAILOVER_PUBLIC_URL, as Twilio signs them.

``mode="embedded"`` runs the same against SQLite without Redis, where the web
applies each callback in the request (one transaction each).

Reported: callbacks applied per second, from the first post to the last one
applied in the database (``provider_events.applied_at``); the response times
(p50 / p99); none lost (every callback stored and applied, every row ends
``delivered``); none applied twice (one ``delivery.delivered`` audit event per
row, one stored event per callback).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from benchmarks import procstats
from benchmarks.fakes import ProviderFakes
from benchmarks.stack import Installation, Services, write_config
from failover.models import AuditEvent, Delivery, ProviderEvent

STATUSES = ("queued", "sent", "delivered")
LOAD_PROCESSES = 2
TARGET_PER_S = 1500

# One job: (path with query, form body, headers).
Job = tuple[str, bytes, dict[str, str]]


def callbacks(
    root: Path,
    fakes: ProviderFakes,
    services: Services,
    *,
    mode: str = "production",
    total: int = 15_000,
    clients: int = 50,
    web_workers: int = 2,
    timeout: float = 120.0,
) -> dict[str, Any]:
    per_row = len(STATUSES)
    rows = total // per_row
    fakes.configure(latency=0.0, max_concurrent=None)  # the rows only need to exist; sending is not measured here
    config = write_config(root / "configs" / str(rows), rows)
    extra = {"FAILOVER_WEB_WORKERS": str(web_workers), "FAILOVER_WEB_THREADS": "8"}
    with Installation(mode, root, config, fakes, services, web=True, extra_env=extra) as inst:
        assert inst.runtime is not None
        inst.activate("bench-sms")
        inst.wait_for(lambda: inst.open_rows() == 0, timeout=timeout, what=f"{rows} SMS sent", every=0.25)
        with inst.runtime.database.reading() as session:
            sent = session.execute(select(Delivery.id, Delivery.provider_id).order_by(Delivery.id)).all()
        jobs = _jobs(inst, [(int(i), str(sid)) for i, sid in sent], clients)
        web_cpu = sum(procstats.tree_cpu_seconds(pid) for pid in inst.web_pids())
        workers_cpu, servers_cpu = inst.worker_cpu(), inst.server_cpu()
        port = int(urllib.parse.urlsplit(inst.public_url).port or 80)
        shares = [jobs[k::LOAD_PROCESSES] for k in range(LOAD_PROCESSES)]
        with ProcessPoolExecutor(LOAD_PROCESSES) as pool:
            answers = [a for part in pool.map(_post_all, [port] * LOAD_PROCESSES, shares) for a in part]
        posted_until = max(end for _, end, _ in answers)
        first_post = min(start for start, _, _ in answers)
        expected = len(answers)

        def applied() -> int:
            assert inst.runtime is not None
            with inst.runtime.database.reading() as session:
                query = select(func.count()).select_from(ProviderEvent).where(ProviderEvent.applied_at.is_not(None))
                return int(session.scalar(query) or 0)

        try:
            inst.wait_for(lambda: applied() >= expected, timeout=timeout, what="every callback applied", every=0.05)
            complete = True
        except TimeoutError:
            complete = False
        applied_count = applied()
        with inst.runtime.database.reading() as session:
            last_applied = session.scalar(select(func.max(ProviderEvent.applied_at)))
            stored = int(session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)
            delivered_events = int(
                session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "delivery.delivered")
                )
                or 0
            )
            finals = dict(
                session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()  # type: ignore[arg-type]
            )
        last = last_applied.timestamp() if last_applied is not None else posted_until
        statuses: dict[str, int] = {}
        for _, _, status in answers:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        latencies = sorted(end - start for start, end, _ in answers)
        seconds = max(last, posted_until) - first_post
        cpu = {
            "web_s": round(sum(procstats.tree_cpu_seconds(pid) for pid in inst.web_pids()) - web_cpu, 1),
            "workers_s": round(inst.worker_cpu() - workers_cpu, 1),
            "servers_s": round(inst.server_cpu() - servers_cpu, 1),
        }
        depth = inst.runtime.receipts_queue.depth() if inst.runtime.receipts_queue is not None else None
    inst.remove()
    return {
        "mode": mode,
        "callbacks": expected,
        "rows": len(sent),
        "clients": clients,
        "web_workers": web_workers,
        "posted_s": round(posted_until - first_post, 2),
        "applied_s": round(seconds, 2),
        "applied_per_s": round(applied_count / seconds, 0) if seconds > 0 else None,
        "posted_per_s": round(expected / (posted_until - first_post), 0),
        "response_ms": {
            "p50": round(_quantile(latencies, 0.50) * 1000, 1),
            "p99": round(_quantile(latencies, 0.99) * 1000, 1),
            "max": round(latencies[-1] * 1000, 1),
        },
        "answers": statuses,
        "applied": applied_count,
        "complete": complete,
        "none_lost": complete and stored == expected and finals.get("delivered", 0) == len(sent),
        "none_twice": delivered_events == len(sent) and stored == expected,
        "stored_events": stored,
        "delivered_audit_events": delivered_events,
        "final_statuses": finals,
        "queue_left": depth,
        "cpu": cpu,
        "target_per_s": TARGET_PER_S,
        "met": bool(complete and seconds > 0 and applied_count / seconds >= TARGET_PER_S),
    }


def _jobs(inst: Installation, sent: list[tuple[int, str]], clients: int) -> list[list[Job]]:
    """Each client's callbacks: its rows, each with its statuses in order, signed for FAILOVER_PUBLIC_URL."""
    token = inst.env["TWILIO_AUTH_TOKEN"]
    account = inst.env["TWILIO_ACCOUNT_SID"]
    validator = RequestValidator(token)
    public = inst.public_url
    jobs: list[list[Job]] = [[] for _ in range(clients)]
    for index, (delivery_id, sid) in enumerate(sent):
        path = f"/webhooks/twilio/status?delivery={delivery_id}"
        for status in STATUSES:
            form = {
                "AccountSid": account,
                "ApiVersion": "2010-04-01",
                "From": "+12025550100",
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": "+12025550199",
            }
            headers = {
                "X-Twilio-Signature": validator.compute_signature(public + path, form),
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
            }
            jobs[index % clients].append((path, urllib.parse.urlencode(form).encode(), headers))
    return jobs


def _post_all(port: int, clients: list[list[Job]]) -> list[tuple[float, float, int]]:
    """Run in a load process: one thread per client, one keep-alive connection each; (start, end, status) each."""
    results: list[list[tuple[float, float, int]]] = [[] for _ in clients]
    barrier = threading.Barrier(len(clients))

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        barrier.wait()
        for path, body, headers in clients[index]:
            start = time.time()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            results[index].append((start, time.time(), status))
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for part in results for r in part]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]
