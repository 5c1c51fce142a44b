"""``python -m benchmarks.people``: the people directory at 50,000 (issue 13). Part of ``make bench``.

Each measurement runs in a fresh Python process (so its peak RSS is its own)
against a fresh SQLite database (``--database-url`` for PostgreSQL):

- ``sync_full``: Graph ``/users/delta`` from scratch, N users, paging fake over TLS, msal token;
- ``sync_delta``: the follow-up delta with 1 % of the users changed (same process, after the full sync);
- ``csv_import``: ``import_csv`` of an N-row file (parse, validate, snapshot);
- ``plan``: planning the demo runbook for N people from the table;
- ``worker``: a worker's peak memory sending a 50-row batch while the table holds N people
  (measured at 1,000 and N: the target is flat within 20 %).

Writes ``benchmarks/results/people.json`` and prints a table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.people", description=__doc__)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="5,000 people: checks the pipeline")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)  # make bench passes BENCH_ARGS meant for benchmarks.run too
    n = 5_000 if args.quick else args.people
    if args.child:
        print(json.dumps(_child(args.child, n, args.database_url)))
        return 0
    results: dict[str, Any] = {"people": n, "measurements": {}}
    started = time.monotonic()
    for name, size in (
        ("sync", n),  # the full sync, then the delta, in one process: the delta needs the full one first
        ("csv_import", n),
        ("plan", n),
        ("worker_small", 1_000),
        ("worker", n),
    ):
        command = [sys.executable, "-m", "benchmarks.people", "--child", name, "--people", str(size)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        figure = json.loads(done.stdout.strip().splitlines()[-1])
        for key, one in (figure.pop("parts") if "parts" in figure else {name: figure}).items():
            results["measurements"][key] = one
            print(f"{key:<12} {size:>7} people  {one['seconds']:>7.1f} s  peak {one['peak_mib']:>6.0f} MiB")
    results["wall_s"] = round(time.monotonic() - started)
    small, large = results["measurements"]["worker_small"], results["measurements"]["worker"]
    growth = large["peak_mib"] / small["peak_mib"] - 1
    results["worker_growth"] = round(growth, 3)
    print(f"worker peak memory 1,000 -> {n:,} people: {growth:+.0%} (target: within 20 %)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "people.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: that one survives exec, so a child
    started by a large process would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _child(name: str, n: int, database_url: str | None) -> dict[str, Any]:
    root = Path(os.environ.get("BENCH_ROOT") or tempfile.mkdtemp(prefix="failover-people-bench-"))
    url = os.environ.get("BENCH_URL") or database_url or f"sqlite:///{root / 'failover.db'}"
    runtime, graph = _runtime(root, url, graph=name.startswith("sync"))
    try:
        if name == "sync":  # sync_full, then sync_delta (1 % changed); the delta's peak includes the full's
            graph.add(*(_user(i) for i in range(n)))
            started = time.perf_counter()
            full = runtime.people.sync_graph(actor="bench")
            seconds = round(time.perf_counter() - started, 2)
            status = getattr(full, "status", None)
            parts = {"sync_full": {"seconds": seconds, "peak_mib": round(_peak_mib(), 1), "status": status}}
            for i in range(0, n, 100):
                graph.change(_user(i)["id"], jobTitle="Changed")
            started = time.perf_counter()
            delta = runtime.people.sync_graph(actor="bench")
            seconds = round(time.perf_counter() - started, 2)
            status = getattr(delta, "status", None)
            parts["sync_delta"] = {"seconds": seconds, "peak_mib": round(_peak_mib(), 1), "status": status}
            return {**parts["sync_delta"], "parts": parts}
        elif name == "csv_import":
            data = (
                "id,name,phone,email,groups,department\n"
                + "".join(
                    f"c{i:06d},Person {i},+1202555{i % 10000:04d},c{i:06d}@personal.example,all-staff,IT\n"
                    for i in range(n)
                )
            ).encode()
            started = time.perf_counter()
            outcome, _ = runtime.people.import_csv(data, "bench.csv", actor="bench")
        elif name == "plan":
            _bulk(runtime, n)
            from failover.domain.planning import ActivationInfo, IncidentInfo, plan

            catalog = runtime.config.catalog()
            runbook = catalog.runbook("exchange-outage")
            started = time.perf_counter()
            planned = plan(
                catalog, runbook, phase="steps", incident=IncidentInfo("x"), activation=ActivationInfo(None, "b")
            )
            outcome = {"deliveries": len(planned.deliveries)}
        elif name == "worker_run":  # a fresh worker process: warm up, send one batch, run the follow-up
            runtime.warm()
            steps = {"warm": _peak_mib()}
            started = time.perf_counter()
            runtime.delivery.send_batch(int(os.environ["BENCH_BATCH"]))
            steps["send_batch"] = _peak_mib()
            runtime.delivery.follow_up()
            steps["follow_up"] = _peak_mib()
            outcome = None
            print(json.dumps(steps), file=sys.stderr)
        else:  # worker, worker_small: N people in the table; the measured worker is a process of its own
            _bulk(runtime, n)
            accepted, _ = runtime.activations.activate(runbook_id="exchange-outage", reason="bench", actor="bench")
            command = [sys.executable, "-m", "benchmarks.people", "--child", "worker_run", "--people", str(n)]
            env = {**os.environ, "BENCH_ROOT": str(root), "BENCH_URL": url, "BENCH_BATCH": str(accepted.batch_ids[-1])}
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env, check=True)
            return dict(json.loads(done.stdout.strip().splitlines()[-1]))
        seconds = time.perf_counter() - started
        status = getattr(outcome, "status", None)
        return {"seconds": round(seconds, 2), "peak_mib": round(_peak_mib(), 1), "status": status}
    finally:
        runtime.close()
        if graph is not None:
            graph.stop()
            graph.entra.stop()


def _user(i: int) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{i:012d}",
        "userPrincipalName": f"user{i:06d}@contoso.example",
        "displayName": f"User {i}",
        "mobilePhone": f"+1 202 555 {i % 10000:04d}",
        "businessPhones": [],
        "department": "IT" if i % 5 == 0 else "Sales",
        "officeLocation": "Berlin HQ" if i % 3 == 0 else "Paris",
        "jobTitle": "Engineer",
        "accountEnabled": True,
        "usageLocation": "US",
    }


def _bulk(runtime: Any, n: int) -> None:
    import datetime as dt

    from failover.models_people import PersonGroup, PersonRow

    runtime.config.catalog()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": f"b{i:06d}",
            "name": f"Bulk {i}",
            "phone": f"+1202555{i % 10000:04d}",
            "email": f"b{i:06d}@personal.example",
            "listed_groups": ["all-staff"],
            "sources": "csv",
            "updated_at": now,
        }
        for i in range(n)
    ]
    with runtime.database.engine.begin() as connection:
        connection.execute(PersonRow.__table__.insert(), rows)
        connection.execute(
            PersonGroup.__table__.insert(), [{"person_id": r["id"], "group_name": "all-staff"} for r in rows]
        )


def _runtime(root: Path, url: str, *, graph: bool) -> tuple[Any, Any]:
    import yaml

    from failover.db import migrate
    from failover.runtime import Runtime
    from failover.settings import load_settings

    config = root / "config"
    if not config.exists():
        config.mkdir()
        contacts = yaml.safe_load((REPO / "config" / "contacts.yaml").read_text())
        (config / "contacts.yaml").write_text(yaml.safe_dump(contacts))
        sources = [{"kind": "graph"}, {"kind": "yaml"}] if graph else [{"kind": "yaml"}]
        # A benchmark replaces the whole roster on purpose: no max_removal refusal.
        people = {"sources": sources, "safety": {"max_removal": "100%"}}
        (config / "people.yaml").write_text(yaml.safe_dump(people))
        (config / "detection.yaml").write_text('watch: ["Exchange Online"]\n')
    env = {
        "FAILOVER_DATABASE_URL": url,
        "FAILOVER_DATA_DIR": str(root / "var"),
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FAILOVER_SECRET_KEY": "bench-secret",
        "FAILOVER_AUDIT_KEY": "bench-audit-key-0123456789abcdef0123456789abcdef",
        "FAILOVER_ENV_FILE": "",
    }
    fake = None
    if graph:
        from tests.fakes.graph_users import FakeGraphUsers
        from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, FakeEntra
        from tests.fakes.tls import TestCA

        ca = TestCA(root / "ca")
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca.bundle)
        entra = FakeEntra(ssl_context=ca.server_context()).start()
        fake = FakeGraphUsers(entra, ssl_context=ca.server_context(), page_size=999).start()  # Graph's maximum
        env.update(
            FAILOVER_GRAPH_TENANT_ID=TENANT,
            FAILOVER_GRAPH_CLIENT_ID=CLIENT_ID,
            FAILOVER_GRAPH_CLIENT_SECRET=CLIENT_SECRET,
            FAILOVER_GRAPH_API_BASE=fake.url,
            FAILOVER_GRAPH_AUTHORITY_BASE=entra.url,
        )
    os.environ.update(env)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    runtime.config.catalog()
    return runtime, fake


if __name__ == "__main__":
    raise SystemExit(main())
