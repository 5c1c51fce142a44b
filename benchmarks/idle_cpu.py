"""Idle cost: the CPU an installation burns while it waits for an outage that does not come.

    python -m benchmarks.idle_cpu [--seconds 60] [--settle 25] [--mode embedded|production|both]

* embedded: ``failover up`` (web, one worker, beat; SQLite and the embedded broker) on the demo files;
* production: ``failover web`` (gunicorn, 2 workers), two ``failover worker`` and one ``failover beat``
  on PostgreSQL and Redis (started here, or found as tests/services.py finds them); the servers' own CPU
  is reported apart.

After ``--settle`` seconds (start-up, imports, the first sweeps), the CPU time of every process is
sampled from /proc and sampled again ``--seconds`` later; the figure is CPU seconds per wall second,
as a percentage of one core. Not part of ``make test``: it takes a few minutes. Results are printed
and written to benchmarks/results/idle_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import procstats

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _measure(pids: list[int], seconds: float) -> float:
    every = [pid for root in pids for pid in procstats.tree(root)]
    before = {pid: procstats.cpu_seconds(pid) for pid in every}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    spent = {pid: procstats.cpu_seconds(pid) - before[pid] for pid in every}
    for pid, cpu in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {100.0 * cpu / elapsed:6.2f} %  {_name(pid)}", file=sys.stderr)
    return 100.0 * sum(spent.values()) / elapsed


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[-80:]
    except OSError:
        return str(pid)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAILOVER_", "TWILIO_", "SENDGRID_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["FAILOVER_ENV_FILE"] = ""
    return env


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def embedded(seconds: float, settle: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="idle-embedded-") as root:
        env = {
            **_clean_env(),
            "FAILOVER_DATA_DIR": f"{root}/var",
            "FAILOVER_CONFIG_DIR": f"{root}/config",
            "FAILOVER_RUNBOOKS_DIR": f"{root}/runbooks",
            "FAILOVER_PORT": str(_free_port()),
        }
        with open(f"{root}/up.log", "wb") as log:
            up = subprocess.Popen(
                [sys.executable, "-m", "failover", "up"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            time.sleep(settle)
            if up.poll() is not None:
                raise SystemExit(f"failover up exited:\n{Path(root, 'up.log').read_text()[-3000:]}")
            pids = procstats.tree(up.pid)
            result = _measure([up.pid], seconds)
            if up.poll() is not None or not all(Path(f"/proc/{pid}").exists() for pid in pids):
                raise SystemExit(f"a process ended while measured:\n{Path(root, 'up.log').read_text()[-3000:]}")
            return {"failover up (web + worker + beat)": result}
        finally:
            _stop([up])


def production(seconds: float, settle: float) -> dict[str, float]:
    from benchmarks.stack import Services

    services = Services()
    name = f"idle_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="idle-production-") as root:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            env = {
                **_clean_env(),
                "FAILOVER_DATA_DIR": f"{root}/var",
                "FAILOVER_CONFIG_DIR": str(REPO / "config"),
                "FAILOVER_RUNBOOKS_DIR": str(REPO / "runbooks"),
                "FAILOVER_DATABASE_URL": services.database(name),
                "FAILOVER_BROKER_URL": services.broker(),
                "FAILOVER_SECRET_KEY": "idle-secret",
                "FAILOVER_AUDIT_KEY": "idle-audit-key-0123456789abcdef0123456789",
                "FAILOVER_PORT": str(_free_port()),
                "FAILOVER_WEB_WORKERS": "2",
            }
            for index, argv in enumerate(
                (["web"], ["worker", "--hostname", "w1@%h"], ["worker", "--hostname", "w2@%h"], ["beat"])
            ):
                with open(f"{root}/p{index}.log", "wb") as log:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "failover", *argv],
                            env=env,
                            cwd=REPO,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            time.sleep(settle)
            dead = [p.args for p in processes if p.poll() is not None]
            if dead:
                raise SystemExit(f"exited early: {dead}")
            servers = services.server_pids()
            before_servers = sum(procstats.tree_cpu_seconds(pid) for pid in servers)
            started = time.monotonic()
            failover = _measure([p.pid for p in processes], seconds)
            dead = [p.args for p in processes if p.poll() is not None]
            if dead:
                raise SystemExit(f"exited while measured: {dead}")
            servers_pct = (
                100.0
                * (sum(procstats.tree_cpu_seconds(pid) for pid in servers) - before_servers)
                / (time.monotonic() - started)
            )
            return {
                "failover web (2 gunicorn workers) + 2 workers + beat": failover,
                "PostgreSQL + Redis (shared by anything else running)": servers_pct,
            }
        finally:
            _stop(processes)
            services.drop(name)
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=25.0)
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    args = parser.parse_args()
    results: dict[str, float] = {}
    if args.mode in ("embedded", "both"):
        results.update(embedded(args.seconds, args.settle))
    if args.mode in ("production", "both"):
        results.update(production(args.seconds, args.settle))
    for what, pct in results.items():
        print(f"{what:60s} {pct:6.2f} % of one core over {args.seconds:.0f} s idle")
    out = REPO / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "idle_cpu.json").write_text(json.dumps({"seconds": args.seconds, "cpu_percent": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
