"""The measurements. Each returns a plain dict that goes into results.json as it is.

Times are ``time.time()`` in every process (one machine, one clock), so a
provider request recorded by the fakes can be compared with the moment this
process asked for the activation.
"""

from __future__ import annotations

import datetime as dt
import http.client
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from benchmarks import capacity, procstats
from benchmarks.fakes import MicrosoftFakes, ProviderFakes
from benchmarks.stack import GRAPH_RUNBOOKS, WATCHED, Installation, Services, write_config, write_detection
from tests.fakes.microsoft import CLIENT_SECRET

# What tests.conftest.make_people's phone numbers and addresses contain: never to be found in a log.
CONTACT_MARKS = ("+1202555", "@personal.example")
SMS_BODY = "Email is down. Do not rely on Outlook. Updates by SMS and on the status page. Reply ACK to confirm."


def bound(n: int, latency: float, concurrency: int) -> dict[str, float]:
    """The physical bound: what the provider's latency and concurrency allow, nothing of ours."""
    sms = n * latency / concurrency + latency
    email_requests = math.ceil(n / 1000)
    email = math.ceil(email_requests / concurrency) * latency
    return {"sms_s": sms, "email_s": email, "email_requests": email_requests, "s": max(sms, email)}


def _provider_summary(stats: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "requests",
        "by_status",
        "units",
        "duplicates",
        "peak_in_flight",
        "mean_in_flight",
        "max_started_in_any_second",
        "max_accepted_in_any_second",
        "handler_ms",
        "overhead_ms",
    )
    return {key: stats[key] for key in keys}


class Run:
    """One installation, sampled before and after one activation."""

    def __init__(self, installation: Installation, fakes: ProviderFakes) -> None:
        self.installation = installation
        self.fakes = fakes

    def measure(self, *, runbook: str, sms: int, email: int, timeout: float, poll: float = 0.25) -> dict[str, Any]:
        inst, fakes = self.installation, self.fakes
        fakes.reset()
        machine = procstats.MachineSample.now()
        workers, beat, servers_cpu = inst.worker_cpu(), inst.beat_cpu(), inst.server_cpu()
        fake_cpu = fakes.cpu_seconds()
        own_cpu = time.process_time()
        logs = inst.log_sizes()
        servers_before = capacity.sample(inst)
        activation = inst.activate(runbook)

        def providers_done() -> bool:
            return (not sms or fakes.progress("twilio")["units"] >= sms) and (
                not email or fakes.progress("sendgrid")["units"] >= email
            )

        inst.wait_for(providers_done, timeout=timeout, what=f"{sms} SMS and {email} emails at the fakes", every=poll)
        ledger_final = inst.wait_for(lambda: inst.open_rows() == 0, timeout=timeout, what="every row final", every=poll)
        after = procstats.MachineSample.now()
        capacity.settle(inst)
        servers_after = capacity.sample(inst)
        ours = sum(
            (
                inst.worker_cpu() - workers,
                inst.beat_cpu() - beat,
                inst.server_cpu() - servers_cpu,
                fakes.cpu_seconds() - fake_cpu,
                time.process_time() - own_cpu,
            )
        )
        twilio, sendgrid = fakes.stats("twilio"), fakes.stats("sendgrid")
        messages = sms + email
        worker_cpu = inst.worker_cpu() - workers
        last = [s["last_accepted"] for s, count in ((twilio, sms), (sendgrid, email)) if count]
        statuses = inst.statuses()
        tasks = inst.task_stats(logs)
        until_final = ledger_final - activation.started
        servers = capacity.delta(servers_before, servers_after, seconds=until_final, messages=messages)
        if servers is not None:
            servers["broker_tasks"] = tasks["send_batch_tasks"] + tasks["sweep_tasks"]
            servers["broker_tasks_per_s"] = round(servers["broker_tasks"] / until_final, 1)
            servers["worker_cores"] = round(worker_cpu / until_final, 2)
            servers["server_cores"] = round((inst.server_cpu() - servers_cpu) / until_final, 2)
        return {
            "activation_id": activation.activation_id,
            "started_at": activation.started,
            "counts": activation.counts,
            "batches": activation.batches,
            "tasks": tasks,
            "broker_ok": activation.broker_ok,
            "accept_s": round(activation.accepted - activation.started, 3),
            "first_sms_s": _since(twilio["first_received"], activation.started),
            "sms_done_s": _since(twilio["last_accepted"], activation.started) if sms else None,
            "email_done_s": _since(sendgrid["last_accepted"], activation.started) if email else None,
            "ttn_s": _since(max(last), activation.started),
            "ledger_final_s": _since(ledger_final, activation.started),
            "statuses": statuses,
            "exactly_once": twilio["units"] == sms
            and twilio["duplicates"] == 0
            and sendgrid["units"] == email
            and sendgrid["duplicates"] == 0
            and statuses.get("sms:sent", 0) + statuses.get("sms:delivered", 0) == sms  # delivered: paced receipts
            and statuses.get("email:sent", 0) == email,
            "worker_cpu_s": round(worker_cpu, 2),
            "cpu_s_per_1000_messages": round(worker_cpu / messages * 1000, 3),
            "worker_peak_mib": inst.worker_peak_mib(),
            "beat_cpu_s": round(inst.beat_cpu() - beat, 2),
            "db_broker_server_cpu_s": round(inst.server_cpu() - servers_cpu, 2),
            "servers": servers,
            "activation_cpu_s": round(activation.cpu_s, 2),
            "fake_cpu_ms_per_request": _per_request(
                fakes.cpu_seconds() - fake_cpu, twilio["requests"] + sendgrid["requests"]
            ),
            "machine": procstats.machine_busy(machine, after, ours),
            "twilio": _provider_summary(twilio),
            "sendgrid": _provider_summary(sendgrid),
        }


def _since(at: float | None, start: float) -> float | None:
    return None if at is None else round(at - start, 3)


def _per_request(cpu: float, requests: int) -> float | None:
    return round(cpu / requests * 1000, 4) if requests else None


# -- time to notify everyone ------------------------------------------------------


def ttn(
    mode: str,
    n: int,
    *,
    root: Path,
    fakes: ProviderFakes,
    services: Services,
    latency: float,
    concurrency: int,
    sender_mps: float | None = None,
) -> dict[str, Any]:
    """``sender_mps``: the fake Twilio hands messages out at that rate and posts their receipts to our web
    (gunicorn, started for it), so the run also measures the time to the last SMS delivered in the ledger."""
    fakes.configure(latency=latency, max_concurrent=concurrency)
    config = write_config(root / "configs" / str(n), n)
    limits = bound(n, latency, concurrency)
    # failover is told the provider's allowance, as an operator would configure it.
    allowance = {"FAILOVER_TWILIO_MAX_CONCURRENT": str(concurrency)}
    if sender_mps:
        allowance["FAILOVER_TWILIO_SENDER_MPS"] = f"{sender_mps:g}"  # the preview's setting (issue 17)
    fakes.pace(sender_mps)
    try:
        with Installation(mode, root, config, fakes, services, extra_env=allowance, web=bool(sender_mps)) as inst:
            result = Run(inst, fakes).measure(runbook="bench", sms=n, email=n, timeout=120 + n * 0.05)
            result["sender_mps"] = sender_mps
            result["last_delivered_s"] = _last_delivered(inst, n, result["started_at"]) if sender_mps else None
    finally:
        fakes.pace(None)
    inst.remove()
    result.update(
        mode=mode,
        n=n,
        latency_s=latency,
        concurrency=concurrency,
        bound_s=round(limits["s"], 3),
        sms_bound_s=round(limits["sms_s"], 3),
        email_bound_requests=limits["email_requests"],
        ratio=round(result["ttn_s"] / limits["s"], 2),
        measured=True,
    )
    return result


def _last_delivered(inst: Installation, sms: int, started: float) -> float | None:
    """Seconds from the activation to the last SMS row ``delivered`` (receipts paced by the sender MPS)."""
    from sqlalchemy import func, select

    from failover.models import Delivery

    assert inst.runtime is not None
    runtime = inst.runtime

    def delivered() -> int:
        with runtime.database.reading() as session:
            query = select(func.count()).select_from(Delivery)
            query = query.where(Delivery.channel == "sms", Delivery.status == "delivered")
            return int(session.scalar(query) or 0)

    inst.wait_for(lambda: delivered() >= sms, timeout=120 + sms * 0.1, what=f"{sms} SMS delivered", every=0.25)
    with runtime.database.reading() as session:
        last = session.scalar(select(func.max(Delivery.delivered_at)).where(Delivery.channel == "sms"))
    if last is None:
        return None
    moment = last.replace(tzinfo=dt.UTC) if last.tzinfo is None else last
    return round(moment.timestamp() - started, 3)


# -- throughput at zero latency ------------------------------------------------------


def throughput(mode: str, n: int, *, root: Path, fakes: ProviderFakes, services: Services) -> dict[str, Any]:
    """SMS only, no latency, no cap: how fast the durable path (ledger in, statuses out) goes."""
    fakes.configure(latency=0.0, max_concurrent=None)
    config = write_config(root / "configs" / str(n), n)
    # No provider cap; with answers in microseconds a few sending threads per worker keep the CPU busy.
    unlimited = {"FAILOVER_TWILIO_MAX_CONCURRENT": "0", "FAILOVER_SEND_CONCURRENCY": "16"}
    with Installation(mode, root, config, fakes, services, extra_env=unlimited) as inst:
        result = Run(inst, fakes).measure(runbook="bench-sms", sms=n, email=0, timeout=120 + n * 0.05)
    inst.remove()
    result.update(
        mode=mode,
        n=n,
        sms_per_s_ledger=round(n / result["ledger_final_s"], 1),
        sms_per_s_provider=round(n / result["sms_done_s"], 1),
    )
    return result


# -- latency to the first message ------------------------------------------------------


class Trigger(Protocol):
    """What starts an activation; ``name`` labels the figure. Returns the time it was asked for."""

    name: str

    def available(self) -> str | None:
        """None when this trigger can be measured here, else why not."""

    def fire(self, installation: Installation) -> float: ...


class ConfirmTrigger:
    """An operator's confirm: ``Runtime.activations.activate``, which the console's confirm and the API call run."""

    name = "api_confirm"

    def available(self) -> str | None:
        return None

    def fire(self, installation: Installation) -> float:
        return installation.activate("bench").started


def first_message(
    mode: str,
    trigger: Trigger,
    *,
    runs: int,
    people: int,
    root: Path,
    fakes: ProviderFakes,
    services: Services,
    latency: float,
    concurrency: int,
) -> dict[str, Any]:
    """Trigger → first SMS request at the fake, over ``runs`` activations with idle workers."""
    reason = trigger.available()
    if reason is not None:
        return {"mode": mode, "trigger": trigger.name, "measured": False, "why": reason}
    fakes.configure(latency=latency, max_concurrent=concurrency)
    config = write_config(root / "configs" / str(people), people)
    samples: list[float] = []
    accept: list[float] = []
    with Installation(mode, root, config, fakes, services) as inst:
        time.sleep(1.0)  # let the workers settle into their idle polling
        for _ in range(runs):
            fakes.reset()
            started = trigger.fire(inst)
            accept.append(time.time() - started)
            inst.wait_for(lambda: fakes.progress("twilio")["units"] >= people, timeout=120, what="the run's SMS")
            inst.wait_for(lambda: inst.open_rows() == 0, timeout=120, what="every row final")
            first = fakes.stats("twilio")["first_received"]
            samples.append(first - started)
            time.sleep(0.3)  # idle again, as before a real outage
    inst.remove()
    return {
        "mode": mode,
        "trigger": trigger.name,
        "measured": True,
        "runs": runs,
        "people": people,
        "p50_s": round(statistics.median(samples), 3),
        "p95_s": round(_quantile(samples, 0.95), 3),
        "max_s": round(max(samples), 3),
        "accept_p50_s": round(statistics.median(accept), 3),
        "samples_s": [round(s, 3) for s in samples],
    }


def graph_flip(
    mode: str,
    *,
    runs: int,
    people: int,
    poll_interval: float,
    root: Path,
    fakes: ProviderFakes,
    services: Services,
    latency: float,
    concurrency: int,
    recover_hold: float = 1.0,
) -> dict[str, Any]:
    """Graph flips Exchange Online to an open serviceInterruption / incident → first SMS request at the fake.

    The whole watcher, as deployed: ``failover beat`` schedules a Graph poll every ``poll_interval``, a
    worker polls the TLS fakes of Entra ID (msal) and Graph, the policy confirms at once and opens an
    incident, and the ``bench-graph`` runbook (``activation: auto``) sends an SMS to ``people``. Each run
    waits a random part of a poll interval first, so that flips land anywhere in the poll cycle (the
    all-clear of the run before ends just after a poll), then flips, measures, and flips Graph back and
    waits for the watcher's all-clear, so that the next flip opens an incident of its own. The target is
    the poll interval + 1 s for every run (with 10 runs p95 is the slowest run).
    """
    fakes.configure(latency=latency, max_concurrent=concurrency)
    config = write_config(root / "configs" / f"graph-{people}", people, runbooks=GRAPH_RUNBOOKS)
    # Every flip is a new incident for the same service: the per-hour bound must not be what stops one.
    detection = write_detection(
        config[0], poll_interval=poll_interval, max_incidents_per_hour=runs + 2, recover_hold=recover_hold
    )
    random = Random(runs)
    samples: list[float] = []
    after_poll: list[float] = []
    cycle: list[float] = []
    reached: list[bool] = []
    started_all = time.monotonic()
    with MicrosoftFakes(root / "graph-ca") as microsoft:
        with Installation(mode, root, config, fakes, services, extra_env=microsoft.env()) as inst:
            inst.wait_for(inst.graph_ok, timeout=60, what="a first successful Graph poll")
            for index in range(runs):
                began = time.monotonic()
                time.sleep(random.uniform(0.0, poll_interval))
                fakes.reset()
                issue_id = f"EX{900001 + index}"
                flipped = microsoft.flip(issue_id, WATCHED)
                inst.wait_for(
                    lambda: fakes.progress("twilio")["units"] >= people,
                    timeout=poll_interval + 60,
                    what=f"the SMS of flip {index + 1} (is max_incidents_per_hour reached?)",
                )
                inst.wait_for(lambda: inst.open_rows() == 0, timeout=120, what="every row final")
                twilio = fakes.stats("twilio")
                samples.append(twilio["first_received"] - flipped)
                seen = microsoft.first_poll_after(flipped)
                if seen is not None:
                    after_poll.append(twilio["first_received"] - seen)
                reached.append(twilio["units"] == people and twilio["duplicates"] == 0)
                microsoft.restore(issue_id, WATCHED)
                inst.wait_for(
                    lambda: (
                        inst.service_phase(WATCHED) == "resolved"
                        and all(i["state"] == "resolved" for i in inst.incidents())
                    ),
                    timeout=poll_interval + 60,
                    what=f"the all-clear after flip {index + 1}",
                )
                cycle.append(time.monotonic() - began)
            incidents, activations, statuses = inst.incidents(), inst.activations(), inst.statuses()
            token_requests = microsoft.token_requests()
            logs = inst.logs()
    inst.remove()
    target = poll_interval + 1.0
    worst = max(samples)
    return {
        "mode": mode,
        "trigger": "graph_flip",
        "measured": True,
        "runs": runs,
        "people": people,
        "poll_interval_s": poll_interval,
        "target_s": target,
        "met": worst <= target,
        "p50_s": round(statistics.median(samples), 3),
        "p95_s": round(_quantile(samples, 0.95), 3),
        "max_s": round(worst, 3),
        "samples_s": [round(s, 3) for s in samples],
        # From the Graph answer that carried the flip to the first SMS: our part, whatever the poll phase.
        "after_poll_p50_s": round(statistics.median(after_poll), 3) if after_poll else None,
        "after_poll_max_s": round(max(after_poll), 3) if after_poll else None,
        "cycle_s": round(statistics.mean(cycle), 1),
        "wall_s": round(time.monotonic() - started_all, 1),
        "detection": detection,
        "incidents": len(incidents),
        "incidents_by_watcher": sum(1 for i in incidents if i["source"] == "watcher" and i["resolved_by"] == "watcher"),
        "activations": activations,
        "statuses": statuses,
        "entra_token_requests": token_requests,
        "log_tracebacks": logs.count("Traceback"),
        "contact_data_in_logs": any(mark in logs for mark in CONTACT_MARKS + (CLIENT_SECRET,)),
        # Each flip: everyone reached once, one incident opened and resolved by the watcher, one activation.
        "exactly_once": all(reached)
        and len(incidents) == runs
        and activations == {"bench-graph:steps": runs}
        and statuses == {"sms:sent": runs * people},
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# -- the fakes' own overhead ------------------------------------------------------


def fake_overhead(fakes: ProviderFakes, requests: int = 2000) -> dict[str, Any]:
    """Sequential keep-alive POSTs, shaped like twilio-python's, with no latency configured.

    The round trip includes this client and the loopback; the fake's own part
    is its CPU per request (from /proc) and its handler time.
    """
    fakes.configure(latency=0.0, max_concurrent=None)
    fakes.reset()
    sid, token = fakes.env()["TWILIO_ACCOUNT_SID"], fakes.env()["TWILIO_AUTH_TOKEN"]
    import base64

    auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
    parts = urlsplit(fakes.twilio_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"}
    path = f"/2010-04-01/Accounts/{sid}/Messages.json"
    cpu = fakes.cpu_seconds("twilio")
    rtts: list[float] = []
    try:
        for i in range(requests):
            body = urlencode({"To": f"+1202555{1000 + i % 9000:04d}", "From": "+12025550100", "Body": SMS_BODY})
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            rtts.append(time.perf_counter() - started)
            if response.status != 201:
                raise RuntimeError(f"fake answered {response.status}")
    finally:
        connection.close()
    cpu = fakes.cpu_seconds("twilio") - cpu
    stats = fakes.stats("twilio")
    rtts.sort()
    return {
        "requests": requests,
        "fake_cpu_ms_per_request": round(cpu / requests * 1000, 4),
        "handler_ms": stats["handler_ms"],
        "round_trip_ms": {
            "p50": round(rtts[len(rtts) // 2] * 1000, 3),
            "p99": round(rtts[int(len(rtts) * 0.99)] * 1000, 3),
        },
        "under_1ms": cpu / requests < 0.001 and rtts[len(rtts) // 2] < 0.001,
    }


# -- peers ------------------------------------------------------------------------


def peer_rate(send_all: Callable[[list[str]], None], sample: int, fakes: ProviderFakes) -> dict[str, Any]:
    from tests.conftest import make_people

    numbers = [str(p["phone"]) for p in make_people(sample)]
    fakes.reset()
    started = time.perf_counter()
    send_all(numbers)
    elapsed = time.perf_counter() - started
    stats = fakes.stats("twilio")
    return {
        "sample": sample,
        "elapsed_s": round(elapsed, 3),
        "sms_per_s": round(sample / elapsed, 2),
        "accepted": stats["units"],
        "by_status": stats["by_status"],
    }


def serial_twilio(fakes: ProviderFakes) -> Callable[[list[str]], None]:
    """What most people write first: the official SDK in a for-loop."""
    from twilio.rest import Client

    env = fakes.env()

    def send_all(numbers: list[str]) -> None:
        client = Client(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"])
        client.api.base_url = fakes.twilio_url
        try:
            for number in numbers:
                client.messages.create(to=number, from_=env["TWILIO_FROM"], body=SMS_BODY)
        finally:
            session = getattr(client.http_client, "session", None)
            if session is not None:
                session.close()

    return send_all


def apprise_twilio(fakes: ProviderFakes) -> Callable[[list[str]], None]:
    """Apprise's Twilio plugin, one notify() to every number; only its API host is pointed at the fake."""
    import apprise
    from apprise.plugins.twilio import NotifyTwilio

    env = fakes.env()
    NotifyTwilio.notify_sms_url = fakes.twilio_url + "/2010-04-01/Accounts/{sid}/Messages.json"

    def send_all(numbers: list[str]) -> None:
        notifier = apprise.Apprise()
        sender = env["TWILIO_FROM"]
        url = f"twilio://{env['TWILIO_ACCOUNT_SID']}:{env['TWILIO_AUTH_TOKEN']}@{sender}/" + "/".join(numbers)
        if not notifier.add(url):
            raise RuntimeError("apprise refused the twilio:// URL")
        if not notifier.notify(body=SMS_BODY):
            raise RuntimeError("apprise reported a failed notification")

    return send_all
