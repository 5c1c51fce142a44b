"""``python -m benchmarks.run`` (``make bench``): every measurement of issues 7 and 17, then the reports.

Runs within a time budget (15 minutes by default, so that ``make bench`` with
its install, the people benchmark and the receipts measurements stays under
20 on a 2-core machine): the time-to-notify runs go from small to large N, and
a run whose predicted duration no longer fits is extrapolated from the largest
measured one of its mode instead, which the output says. Production measures
1,000 to 50,000 (CPU and memory flat in N) and 100,000 once; embedded 5,000
and 20,000 (its targets). ``--full`` ignores the budget; ``--quick`` is a
one-minute smoke of the whole pipeline; ``--profile`` adds py-spy at 5,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import callbacks, profiling, report, scenarios
from benchmarks.fakes import ProviderFakes
from benchmarks.stack import MODES, Installation, Services, write_config

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LATENCY = 0.150
CONCURRENCY = 100
SIZES = (1000, 5000, 20000, 50000, 100000)
EMBEDDED_SIZES = (5000, 20000)  # the embedded targets; one worker on SQLite is not the way to 50,000 or more
PROFILE_N = 5000
MEASUREMENTS = ("fakes", "peers", "first_message", "graph_flip", "throughput", "callbacks", "delivered", "ttn")
DELIVERED_N = 5000
DELIVERED_MPS = 250.0  # a short code hands out 100 MPS; a pooled Messaging Service a few hundred
GRAPH_POLL_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="recipient counts for TTN, production")
    parser.add_argument(
        "--embedded-sizes", default=",".join(map(str, EMBEDDED_SIZES)), help="recipient counts for TTN, embedded"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="production,embedded")
    parser.add_argument("--budget", type=float, default=15 * 60, help="seconds for the measurements")
    parser.add_argument("--full", action="store_true", help="measure every size, however long it takes")
    parser.add_argument("--quick", action="store_true", help="small sizes and samples: checks the pipeline")
    parser.add_argument("--profile", action="store_true", help="py-spy on the workers at N = 5,000 (about 45 s)")
    parser.add_argument(
        "--sender-mps",
        type=float,
        default=0.0,
        help="TTN runs with Twilio's sender pool at this many messages per second: the fake posts paced "
        "delivery receipts to the web (gunicorn) and the rows show the time to the last SMS delivered (0: off)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results.json/.md and ttn.png go")
    parser.add_argument(
        "--only", default=",".join(MEASUREMENTS), help="a subset of " + ",".join(MEASUREMENTS) + " (default: all)"
    )
    args = parser.parse_args(argv)
    only = {m for m in args.only.split(",") if m}
    if only - set(MEASUREMENTS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(MEASUREMENTS)))}")

    sizes = [int(s) for s in args.sizes.split(",") if s]
    embedded_sizes = [int(s) for s in args.embedded_sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    plan = {
        "first_runs": 10,
        "first_people": 200,
        "throughput_n": 5000,
        "serial_sample": 60,
        "apprise_sample": 40,
        "zero_latency_sample": 1000,
        "graph_runs": 10,
        "graph_poll_s": GRAPH_POLL_S,
    }
    if args.quick:
        sizes = [s for s in sizes if s <= 1000] or [200]
        embedded_sizes = [s for s in embedded_sizes if s <= 1000] or sizes
        plan.update(first_runs=5, first_people=50, throughput_n=1000, serial_sample=15, apprise_sample=10, graph_runs=3)
    budget = None if args.full else args.budget
    clock = time.monotonic()
    results: dict[str, Any] = {"meta": _meta(args, plan), "ttn": [], "throughput": [], "first_message": []}
    raw = args.out / "raw"
    root = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    services = Services()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - clock:6.0f}s] {text}", flush=True)

    try:
        with ProviderFakes(latency=LATENCY, max_concurrent=CONCURRENCY) as fakes:
            if "fakes" in only:
                say("fakes: measuring their own overhead")
                results["fakes"] = scenarios.fake_overhead(fakes)
                say(f"fakes: {json.dumps(results['fakes'])}")

            if "peers" in only:
                results["peers"] = _peers(fakes, plan, say)

            for mode in modes if "first_message" in only else ():
                say(f"first message: {plan['first_runs']} confirms, {mode}")
                results["first_message"].append(
                    scenarios.first_message(
                        mode,
                        scenarios.ConfirmTrigger(),
                        runs=plan["first_runs"],
                        people=plan["first_people"],
                        root=root,
                        fakes=fakes,
                        services=services,
                        latency=LATENCY,
                        concurrency=CONCURRENCY,
                    )
                )
                say(f"  {_brief(results['first_message'][-1], 'p50_s', 'p95_s')}")
            if "graph_flip" in only:
                graph_mode = "production" if "production" in modes else modes[0]
                say(f"first message after a Graph flip: {plan['graph_runs']} flips, {graph_mode}")
                graph = scenarios.graph_flip(
                    graph_mode,
                    runs=plan["graph_runs"],
                    people=plan["first_people"],
                    poll_interval=plan["graph_poll_s"],
                    root=root,
                    fakes=fakes,
                    services=services,
                    latency=LATENCY,
                    concurrency=CONCURRENCY,
                )
                results["first_message"].append(graph)
                say(f"  {_brief(graph, 'p50_s', 'p95_s', 'max_s', 'after_poll_p50_s', 'exactly_once', 'wall_s')}")

            for mode in modes if "throughput" in only else ():
                say(f"throughput: {plan['throughput_n']:,} SMS, no latency, {mode}")
                row = scenarios.throughput(mode, plan["throughput_n"], root=root, fakes=fakes, services=services)
                results["throughput"].append(row)
                say(f"  {_brief(row, 'sms_per_s_ledger', 'sms_per_s_provider', 'cpu_s_per_1000_messages')}")

            if "callbacks" in only and "production" in modes:
                total = 3000 if args.quick else 15_000
                say(f"callbacks: {total:,} signed Twilio status callbacks, 50 clients, production web (gunicorn)")
                results["callbacks"] = callbacks.callbacks(root, fakes, services, total=total)
                say(f"  {_brief(results['callbacks'], 'applied_per_s', 'response_ms', 'none_lost', 'none_twice')}")
                fakes.configure(latency=LATENCY, max_concurrent=CONCURRENCY)

            if "delivered" in only and "production" in modes:
                n, mps = (1000, DELIVERED_MPS) if args.quick else (DELIVERED_N, DELIVERED_MPS)
                say(f"time to last delivered: {n:,} people, receipts paced at {mps:g} MPS, production")
                row = scenarios.ttn(
                    "production",
                    n,
                    root=root,
                    fakes=fakes,
                    services=services,
                    latency=LATENCY,
                    concurrency=CONCURRENCY,
                    sender_mps=mps,
                )
                results["delivered"] = row
                say(f"  {_brief(row, 'ttn_s', 'last_delivered_s', 'exactly_once')}")

            per_mode = {"production": set(sizes), "embedded": set(embedded_sizes)}
            for n in sorted(set(sizes) | set(embedded_sizes)) if "ttn" in only else ():
                for mode in modes:
                    if n in per_mode.get(mode, set()):
                        _ttn(results, mode, n, root, fakes, services, budget, clock, say, args.sender_mps or None)
                if n == PROFILE_N and args.profile and not args.quick:
                    results["profile"] = _profile(root, fakes, services, raw, say)
    finally:
        services.close()
        shutil.rmtree(root, ignore_errors=True)

    results["meta"]["wall_s"] = round(time.monotonic() - clock)
    results["meta"]["load_note"] = _load_note(results)
    fake_cpu = [r["fake_cpu_ms_per_request"] for r in results["ttn"] if r.get("fake_cpu_ms_per_request")]
    results["meta"]["fake_cpu_ms_per_request_max"] = max(fake_cpu, default=None)
    late = [
        r["twilio"]["overhead_ms"] for r in results["ttn"] if r.get("measured") and r["twilio"]["overhead_ms"]["p50"]
    ]
    results["meta"]["twilio_late_ms"] = {
        "p50_max": max((o["p50"] for o in late), default=None),
        "p99_max": max((o["p99"] for o in late), default=None),
    }
    paths = report.write(results, args.out)
    say("wrote " + ", ".join(str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in paths))
    print((args.out / "results.md").read_text())
    return 0


def _peers(fakes: ProviderFakes, plan: dict[str, Any], say: Any) -> dict[str, Any]:
    peers: dict[str, Any] = {}
    fakes.configure(latency=LATENCY, max_concurrent=CONCURRENCY)
    say(f"peer: serial twilio-python loop, {plan['serial_sample']} SMS at {LATENCY * 1000:.0f} ms")
    serial = scenarios.peer_rate(scenarios.serial_twilio(fakes), plan["serial_sample"], fakes)
    fakes.configure(latency=0.0, max_concurrent=None)
    zero = scenarios.peer_rate(scenarios.serial_twilio(fakes), plan["zero_latency_sample"], fakes)
    peers["serial_twilio"] = {
        "label": "serial twilio-python loop",
        "latency_ms": LATENCY * 1000,
        **serial,
        "zero_latency_sms_per_s": zero["sms_per_s"],
    }
    say(f"  {serial['sms_per_s']} SMS/s; {zero['sms_per_s']} SMS/s with no latency")
    fakes.configure(latency=LATENCY, max_concurrent=CONCURRENCY)
    try:
        send_all = scenarios.apprise_twilio(fakes)
    except ImportError:
        peers["apprise"] = {
            "label": "Apprise twilio plugin",
            "why": "apprise is not installed (make bench installs it)",
        }
        say("  apprise not installed: skipped")
        return peers
    say(f"peer: Apprise twilio plugin, {plan['apprise_sample']} SMS at {LATENCY * 1000:.0f} ms")
    peers["apprise"] = {
        "label": "Apprise twilio plugin",
        "latency_ms": LATENCY * 1000,
        **scenarios.peer_rate(send_all, plan["apprise_sample"], fakes),
    }
    say(f"  {peers['apprise']['sms_per_s']} SMS/s")
    return peers


def _ttn(
    results: dict[str, Any],
    mode: str,
    n: int,
    root: Path,
    fakes: ProviderFakes,
    services: Services,
    budget: float | None,
    clock: float,
    say: Any,
    sender_mps: float | None = None,
) -> None:
    done = [r for r in results["ttn"] if r["mode"] == mode and r.get("measured")]
    if budget is not None and done:
        largest = max(done, key=lambda r: r["n"])
        predicted = largest["wall_s"] * n / largest["n"] + 15
        left = budget - (time.monotonic() - clock)
        if predicted > left:
            scale = n / largest["n"]
            ttn = round(largest["ttn_s"] * scale, 1)
            row = {
                "mode": mode,
                "n": n,
                "measured": False,
                "extrapolated_from": largest["n"],
                "ttn_s": ttn,
                "bound_s": round(scenarios.bound(n, LATENCY, CONCURRENCY)["s"], 3),
                "latency_s": LATENCY,
                "concurrency": CONCURRENCY,
            }
            row["ratio"] = round(ttn / row["bound_s"], 2)
            results["ttn"].append(row)
            results["meta"]["notes"].append(
                f"TTN {mode} N = {n:,} extrapolated linearly from N = {largest['n']:,} (predicted {predicted:.0f} s, "
                f"{left:.0f} s of the budget left); `--full` measures it."
            )
            say(f"TTN {mode} N={n:,}: extrapolated (needs ~{predicted:.0f}s, {left:.0f}s left)")
            return
    say(f"TTN {mode} N={n:,}")
    started = time.monotonic()
    row = scenarios.ttn(
        mode,
        n,
        root=root,
        fakes=fakes,
        services=services,
        latency=LATENCY,
        concurrency=CONCURRENCY,
        sender_mps=sender_mps,
    )
    row["wall_s"] = round(time.monotonic() - started, 1)
    results["ttn"].append(row)
    say(f"  {_brief(row, 'ttn_s', 'bound_s', 'ratio', 'cpu_s_per_1000_messages', 'worker_peak_mib', 'exactly_once')}")
    if row.get("servers"):
        say(f"  {_brief(row['servers'], 'pg_commits_per_s', 'pg_rows_written_per_s', 'redis_commands_per_s')}")


def _profile(root: Path, fakes: ProviderFakes, services: Services, raw: Path, say: Any) -> list[dict[str, Any]]:
    """py-spy on the production workers at N = 5,000: once as measured (150 ms), once with no latency (CPU-bound)."""
    why = profiling.available()
    if why is not None:
        return [{"why": why}]
    profiles = []
    for latency, runbook, email in ((LATENCY, "bench", PROFILE_N), (0.0, "bench-sms", 0)):
        say(f"profile: py-spy on the production workers, N={PROFILE_N:,}, {latency * 1000:.0f} ms")
        fakes.configure(latency=latency, max_concurrent=CONCURRENCY if latency else None)
        config = write_config(root / "configs" / str(PROFILE_N), PROFILE_N)
        with Installation("production", root, config, fakes, services) as inst:
            recorder = profiling.Recorder(raw / f"latency-{latency * 1000:.0f}ms", inst.worker_pids()).start()
            time.sleep(1.0)  # py-spy attaches
            try:
                row = scenarios.Run(inst, fakes).measure(runbook=runbook, sms=PROFILE_N, email=email, timeout=600)
            finally:
                files = recorder.stop()
        inst.remove()
        summary = profiling.summarise(files) if files else None
        say(f"  TTN {row['ttn_s']} s with py-spy attached; worker CPU {row['worker_cpu_s']} s; {len(files)} profile(s)")
        profiles.append(
            {
                "mode": "production",
                "n": PROFILE_N,
                "latency_s": latency,
                "runbook": runbook,
                "ttn_s_with_profiler": row["ttn_s"],
                "worker_cpu_s": row["worker_cpu_s"],
                "mean_in_flight": row["twilio"]["mean_in_flight"],
                "files": [str(f.relative_to(REPO)) if f.is_relative_to(REPO) else str(f) for f in files],
                "summary": summary,
                "why": None if files else "py-spy wrote no output (is ptrace allowed?)",
            }
        )
    return profiles


def _brief(row: dict[str, Any], *keys: str) -> str:
    return ", ".join(f"{k}={row.get(k)}" for k in keys)


def _meta(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "failover"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + ("+dirty engine" if dirty else ""),
        "machine": f"{os.cpu_count()} cores ({cpu}), {memory} GiB",
        "python": sys.version.split()[0],
        "versions": {
            name: version(name) for name in ("twilio", "sendgrid", "celery", "kombu", "sqlalchemy", "apprise")
        },
        "latency_s": LATENCY,
        "concurrency": CONCURRENCY,
        "plan": plan,
        "args": {
            "sizes": args.sizes,
            "embedded_sizes": args.embedded_sizes,
            "modes": args.modes,
            "only": args.only,
            "budget": args.budget,
            "full": args.full,
            "quick": args.quick,
            "profile": args.profile,
            "sender_mps": args.sender_mps or None,
        },
        "load_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "notes": [
            f"Peers are measured on a sample ({plan['serial_sample']} and {plan['apprise_sample']} SMS) and "
            "extrapolated to each N as N / rate.",
            f"Latency to the first message: {plan['first_people']} recipients per activation, "
            "workers idle before each.",
            "Activation request = Runtime.activations.activate in the benchmark process (what the console's confirm "
            "runs); the catalog is loaded beforehand, as in a running web process.",
            f"Graph flip: {plan['graph_runs']} flips of a fake Graph (TLS, token from a fake Entra ID through msal) "
            f"polled by the watcher every {plan['graph_poll_s']:g} s; each flip waits a random part of a poll "
            "interval, opens an incident of its own and sends the auto runbook's SMS to "
            f"{plan['first_people']} recipients; Graph flips back and the watcher's all-clear (recover_hold 1 s) "
            "comes before the next flip.",
        ],
    }


def _load_note(results: dict[str, Any]) -> str:
    busy = [r["machine"] for r in results["ttn"] if r.get("measured") and "machine" in r]
    foreign = [r["machine"]["foreign_cores"] for r in results["ttn"] if r.get("measured") and "machine" in r]
    if not busy:
        return f"load average {' / '.join(results['meta']['load_at_start'])} at the start"
    return (
        f"load average {' / '.join(results['meta']['load_at_start'])} at the start; during the TTN runs the "
        f"machine was {min(b['busy_cores'] for b in busy):.2f}–{max(b['busy_cores'] for b in busy):.2f} of "
        f"{busy[0]['cores']} cores busy, of which processes outside the benchmark took "
        f"{min(foreign):.2f}–{max(foreign):.2f} cores"
    )


if __name__ == "__main__":
    raise SystemExit(main())
