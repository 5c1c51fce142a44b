"""The provider fakes of tests/fakes, each run in a process of its own and steered over HTTP.

Separate processes keep the fakes off the GIL of whatever is being measured
(the peers run in the benchmark's own process) and off each other's.
``python -m benchmarks.fakes twilio|sendgrid`` starts one fake, prints one JSON
line with its URL and credentials, and serves until its standard input closes. Requests under ``/_bench/``
never count as provider traffic: they reset the record, change the latency or
the concurrency cap, and return statistics computed from the recorded
exchanges (arrival and answer times, status), so that only a summary crosses
the process boundary. ``MicrosoftFakes`` (Entra ID and Graph service health
over TLS, for the Graph flip) is the exception: it runs in this process.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks import procstats
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, ISSUES, TENANT, FakeEntra, FakeGraph, issue
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.server import Request, Response
from tests.fakes.tls import TestCA
from tests.fakes.twilio import FakeTwilio, twilio_signature

REPO = Path(__file__).resolve().parents[1]
CONTROL = "/_bench/"


class _Measured:
    """Mixin for a FakeServer: control routes and the time the fake itself spends per request."""

    latency: float
    max_concurrent: int | None
    lock: Any
    exchanges: list[Any]
    peak_in_flight: int

    def _bench_init(self) -> None:
        self.handler_seconds: list[float] = []

    async def _dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL):
            return self._control(request)
        return await super()._dispatch(request)  # type: ignore[misc]

    async def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        response = await super()._handle(request)  # type: ignore[misc]
        with self.lock:
            self.handler_seconds.append(time.perf_counter() - started)
        return response

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix(CONTROL)
        if action == "reset":
            self.reset_all()
            gc.collect()
            return Response.json(200, {"ok": True})
        if action == "config":
            values = request.json() or {}
            if "latency" in values:
                self.latency = float(values["latency"])
            if "max_concurrent" in values:
                self.max_concurrent = values["max_concurrent"]
            return Response.json(200, {"latency": self.latency, "max_concurrent": self.max_concurrent})
        if action == "progress":
            with self.lock:
                accepted = sum(1 for e in self.exchanges if 200 <= e.status < 300)
                first = min((e.request.received_at for e in self.exchanges), default=None)
            return Response.json(200, {"accepted": accepted, "units": self.units(), "first_received": first})
        if action == "stats":
            return Response.json(200, self.stats())
        return Response.json(404, {"message": f"no control action {action}"})

    def reset_all(self) -> None:
        with self.lock:
            self.exchanges.clear()
            self.handler_seconds.clear()
            self.peak_in_flight = 0

    def units(self) -> int:
        """Messages accepted (an SMS; one recipient of an email request)."""
        raise NotImplementedError

    def duplicates(self) -> int:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        with self.lock:
            exchanges = list(self.exchanges)
            handler = sorted(self.handler_seconds)
            peak = self.peak_in_flight
        accepted = [e for e in exchanges if 200 <= e.status < 300]
        statuses = collections.Counter(str(e.status) for e in exchanges)
        service = sorted(e.answered_at - e.request.received_at - self.latency for e in accepted)
        return {
            "latency_s": self.latency,
            "max_concurrent": self.max_concurrent,
            "requests": len(exchanges),
            "by_status": dict(statuses),
            "accepted": len(accepted),
            "units": self.units(),
            "duplicates": self.duplicates(),
            "first_received": min((e.request.received_at for e in exchanges), default=None),
            "first_accepted": min((e.answered_at for e in accepted), default=None),
            "last_accepted": max((e.answered_at for e in accepted), default=None),
            "peak_in_flight": peak,
            # Requests in flight on average from the first arrival to the last answer: how much of the
            # allowed concurrency the client used.
            "mean_in_flight": _mean_in_flight(exchanges),
            "max_started_in_any_second": _max_in_window([e.request.received_at for e in exchanges], 1.0),
            "max_accepted_in_any_second": _max_in_window([e.request.received_at for e in accepted], 1.0),
            "handler_ms": _quantiles(handler),
            # Time the fake added on top of its configured latency, from request read to answer ready.
            "overhead_ms": _quantiles(service),
            "process_cpu_s": time.process_time(),
        }


class SenderPool:
    """Twilio's side after it accepted a message: the sender pool hands messages out at ``mps`` per second.

    Each accepted message with a StatusCallback takes the next slot (1/mps after the one before it, never
    before it was accepted); at its slot the message is ``sent`` and then ``delivered``, and both status
    callbacks are posted, signed as Twilio signs them, to its StatusCallback URL by a few poster threads
    with keep-alive connections. A callback that fails is not retried (neither does Twilio's).
    """

    POSTERS = 16

    def __init__(self, fake: FakeTwilio, mps: float) -> None:
        self.fake, self.interval = fake, 1.0 / mps
        self.slots: collections.deque[tuple[float, dict[str, Any]]] = collections.deque()
        self.ready = threading.Condition()
        self.next_slot = 0.0
        self.stopped = False
        self.posted = 0
        self.last_delivered_posted: float | None = None
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(self.POSTERS, thread_name_prefix="sender-pool")
        threading.Thread(target=self._run, daemon=True, name="sender-pool-clock").start()

    def add(self, message: dict[str, Any]) -> None:
        with self.ready:
            self.next_slot = max(self.next_slot + self.interval, time.monotonic())
            self.slots.append((self.next_slot, message))
            self.ready.notify()

    def stop(self) -> None:
        with self.ready:
            self.stopped = True
            self.slots.clear()
            self.ready.notify()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.slots and not self.stopped:
                    self.ready.wait()
                if self.stopped:
                    return
                due, message = self.slots[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.ready.wait(wait)
                    continue
                self.slots.popleft()
            self.pool.submit(self._post, message)

    def _post(self, message: dict[str, Any]) -> None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        url = message["_status_callback"]
        for status in ("sent", "delivered"):
            form = self.fake.receipt_form(message, status)
            headers = {"X-Twilio-Signature": twilio_signature(self.fake.auth_token, url, form)}
            try:
                session.post(url, data=form, headers=headers, timeout=30)
            except requests.RequestException:
                continue
            with self.ready:
                self.posted += 1
                if status == "delivered":
                    self.last_delivered_posted = time.time()


class BenchTwilio(_Measured, FakeTwilio):
    def __init__(self, **kwargs: Any) -> None:
        # Apprise accepts only letters and digits in an auth token.
        super().__init__(auth_token="bench0auth0token0" + "f" * 15, **kwargs)
        self._bench_init()
        self.sender_pool: SenderPool | None = None  # /_bench/pace: delivery receipts at a sender MPS

    def reset_all(self) -> None:
        super().reset_all()
        with self.lock:
            self.messages.clear()

    def pace(self, mps: float | None) -> dict[str, Any]:
        if self.sender_pool is not None:
            self.sender_pool.stop()
            self.sender_pool = None
        if mps:
            self.sender_pool = SenderPool(self, float(mps))
        return {"sender_mps": mps}

    def _store(self, form: dict[str, str]) -> dict[str, Any]:
        message = super()._store(form)
        pool = self.sender_pool
        if pool is not None and form.get("StatusCallback"):
            pool.add({**message, "_status_callback": form["StatusCallback"]})
        return message

    def _control(self, request: Request) -> Response:
        if request.path == CONTROL + "pace":
            return Response.json(200, self.pace((request.json() or {}).get("sender_mps")))
        if request.path == CONTROL + "receipts":
            pool = self.sender_pool
            return Response.json(
                200,
                {"posted": pool.posted, "last_delivered_posted": pool.last_delivered_posted} if pool else {},
            )
        return super()._control(request)

    def units(self) -> int:
        with self.lock:
            return len(self.messages)

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.sent_to().values() if count > 1)


class BenchSendGrid(_Measured, FakeSendGrid):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bench_init()

    def reset_all(self) -> None:
        super().reset_all()
        with self.lock:
            self.sends.clear()

    def units(self) -> int:
        with self.lock:
            return sum(len(send["personalizations"]) for send in self.sends)

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.recipients().values() if count > 1)


def _max_in_window(times: list[float], width: float) -> int:
    """The largest number of events inside any window of ``width`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _mean_in_flight(exchanges: list[Any]) -> float | None:
    if not exchanges:
        return None
    start = min(e.request.received_at for e in exchanges)
    span = max(e.answered_at for e in exchanges) - start
    busy = sum(e.answered_at - e.request.received_at for e in exchanges)
    return round(busy / span, 1) if span > 0 else None


def _quantiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p99 / max of sorted seconds, in milliseconds."""
    if not values:
        return {"p50": None, "p99": None, "max": None}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 3)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(values[-1] * 1000, 3)}


# -- the client side -----------------------------------------------------------


PROVIDERS = ("twilio", "sendgrid")
# The fakes stand in for someone else's servers: on a busy 2-core machine they should not queue behind the
# workers under test for a CPU. Root may raise their priority a little; anyone else keeps the default.
FAKE_NICENESS = -5


class ProviderFakes:
    """Start one ``python -m benchmarks.fakes`` process per provider and talk to them. Use as a context manager."""

    def __init__(self, *, latency: float = 0.0, max_concurrent: int | None = None) -> None:
        self.latency = latency
        self.max_concurrent = max_concurrent
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.info: dict[str, Any] = {}

    def start(self) -> ProviderFakes:
        try:
            for provider in PROVIDERS:
                argv = [sys.executable, "-m", "benchmarks.fakes", provider, "--latency", str(self.latency)]
                if self.max_concurrent is not None:
                    argv += ["--max-concurrent", str(self.max_concurrent)]
                process = subprocess.Popen(
                    argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
                )
                self.processes[provider] = process
                assert process.stdout is not None
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"the {provider} fake did not start")
                self.info[provider] = json.loads(line)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        processes, self.processes = self.processes, {}
        for process in processes.values():
            if process.stdin:
                process.stdin.close()  # the child exits when its stdin closes
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()

    def __enter__(self) -> ProviderFakes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cpu_seconds(self, *providers: str) -> float:
        """CPU the fake processes have used so far (all of them unless named)."""
        return sum(procstats.cpu_seconds(int(self.info[p]["pid"])) for p in providers or PROVIDERS)

    @property
    def twilio_url(self) -> str:
        return str(self.info["twilio"]["url"])

    @property
    def sendgrid_url(self) -> str:
        return str(self.info["sendgrid"]["url"])

    def env(self) -> dict[str, str]:
        """The provider variables that point failover's SDK clients at these fakes."""
        return {
            "TWILIO_ACCOUNT_SID": self.info["twilio"]["account_sid"],
            "TWILIO_AUTH_TOKEN": self.info["twilio"]["auth_token"],
            "TWILIO_FROM": "+12025550100",
            "FAILOVER_TWILIO_API_BASE": self.twilio_url,
            "SENDGRID_API_KEY": self.info["sendgrid"]["api_key"],
            "SENDGRID_FROM": "alerts@failover.example",
            "FAILOVER_SENDGRID_API_BASE": self.sendgrid_url,
        }

    def _call(self, provider: str, action: str, payload: Any = None) -> Any:
        url = f"{self.info[provider]['url']}{CONTROL}{action}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        for provider in PROVIDERS:
            self._call(provider, "reset", {})

    def configure(self, *, latency: float, max_concurrent: int | None) -> None:
        self.latency, self.max_concurrent = latency, max_concurrent
        for provider in PROVIDERS:
            self._call(provider, "config", {"latency": latency, "max_concurrent": max_concurrent})

    def pace(self, sender_mps: float | None) -> None:
        """Twilio's delivery receipts at ``sender_mps`` (None: no receipts), to each message's StatusCallback."""
        self._call("twilio", "pace", {"sender_mps": sender_mps})

    def receipts(self) -> dict[str, Any]:
        return dict(self._call("twilio", "receipts"))

    def progress(self, provider: str) -> dict[str, Any]:
        return dict(self._call(provider, "progress"))

    def stats(self, provider: str) -> dict[str, Any]:
        return dict(self._call(provider, "stats"))


class MicrosoftFakes:
    """Entra ID and Graph service health of tests/fakes over local TLS, for the Graph flip. A context manager.

    ``FakeEntra`` (OpenID configuration and the client-credentials token that msal asks for) and
    ``FakeGraph`` (issues and healthOverviews) with a leaf certificate from a throwaway ``TestCA``; the
    workers trust it through ``REQUESTS_CA_BUNDLE`` (see ``env``). Unlike the provider fakes these run on
    threads of the benchmark's own process: they answer one poll every few seconds, never a flood, and a
    flip is a method call whose moment this process knows exactly.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entra: FakeEntra | None = None
        self.graph: FakeGraph | None = None
        self._past: list[dict[str, Any]] = []  # resolved issues, listed on as Graph does for a while

    def start(self) -> MicrosoftFakes:
        ca = TestCA(self.directory)
        self.bundle = ca.bundle
        try:
            self.entra = FakeEntra(ssl_context=ca.server_context())
            self.entra.start()
            self.graph = FakeGraph(self.entra, ssl_context=ca.server_context())
            self.graph.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for server in (self.graph, self.entra):
            if server is not None:
                server.stop()
        self.graph = self.entra = None

    def __enter__(self) -> MicrosoftFakes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        """What points failover's Graph client (msal and requests) at these fakes."""
        assert self.entra is not None and self.graph is not None
        return {
            "FAILOVER_GRAPH_TENANT_ID": TENANT,
            "FAILOVER_GRAPH_CLIENT_ID": CLIENT_ID,
            "FAILOVER_GRAPH_CLIENT_SECRET": CLIENT_SECRET,
            "FAILOVER_GRAPH_API_BASE": self.graph.url,
            "FAILOVER_GRAPH_AUTHORITY_BASE": self.entra.url,
            "REQUESTS_CA_BUNDLE": str(self.bundle),
        }

    def flip(self, issue_id: str, service: str) -> float:
        """Graph starts reporting an open serviceInterruption / incident; returns time.time() of that moment."""
        assert self.graph is not None
        outage = issue(issue_id, service=service, status="serviceInterruption", classification="incident")
        at = time.time()
        self.graph.set_issues(*self._past, outage)  # every poll answered from here on lists it
        self.graph.set_overview(service, "serviceInterruption")
        return at

    def restore(self, issue_id: str, service: str) -> float:
        """Microsoft marks the issue restored and resolved; returns time.time() of that moment."""
        assert self.graph is not None
        self._past.append(issue(issue_id, service=service, status="serviceRestored", resolved=True))
        at = time.time()
        self.graph.set_issues(*self._past)
        self.graph.set_overview(service, "serviceOperational")
        return at

    def first_poll_after(self, moment: float) -> float | None:
        """When Graph answered the first issues request after ``moment``: the poll that saw the flip."""
        assert self.graph is not None
        with self.graph.lock:
            answered = [e.answered_at for e in self.graph.exchanges if e.request.path == ISSUES and e.status == 200]
        return min((at for at in answered if at >= moment), default=None)

    def token_requests(self) -> int:
        assert self.entra is not None
        return self.entra.token_requests()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("provider", choices=PROVIDERS)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--max-concurrent", type=int, default=None, help="requests in flight before 429 / 20429")
    args = parser.parse_args(argv)
    # Every exchange stays recorded (100,000 at N = 50,000): the cycle collector's full passes over them stalled
    # answers by tens of milliseconds. Reference counting frees everything else; reset collects, between runs.
    gc.disable()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, FAKE_NICENESS)
    except PermissionError:
        pass
    server: BenchTwilio | BenchSendGrid
    if args.provider == "twilio":
        server = BenchTwilio(latency=args.latency, max_concurrent=args.max_concurrent).start()
        info = {"account_sid": server.account_sid, "auth_token": server.auth_token}
    else:
        server = BenchSendGrid(latency=args.latency, max_concurrent=args.max_concurrent).start()
        info = {"api_key": server.api_key}
    try:
        print(json.dumps({"pid": os.getpid(), "url": server.url, **info}), flush=True)
        sys.stdin.read()  # until the parent closes the pipe (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
