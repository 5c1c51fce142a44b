"""Where the workers' time goes: py-spy attached to each worker during one measured run.

``py-spy record --gil --format raw`` samples only the thread holding the GIL,
so the samples add up to the Python CPU time the worker spent, and the
collapsed stacks it writes ("frame;frame;frame count" lines) are summarised
here two ways: by the library the innermost frame belongs to (self time) and
by failover function on the stack (inclusive time).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 100  # samples per second

# (label, pattern on "function (file:line)") — the first match from the innermost frame outwards wins.
LIBRARIES = (
    ("audit hash chain (failover/engine/audit.py)", r"failover/engine/audit\.py"),
    ("SQLAlchemy", r"/sqlalchemy/"),
    ("psycopg (PostgreSQL driver)", r"/psycopg/"),
    ("sqlite3", r"sqlite3/"),
    ("twilio SDK", r"/twilio/"),
    ("sendgrid SDK / python_http_client", r"/(sendgrid|python_http_client)/"),
    ("requests", r"/requests/"),
    ("urllib3", r"/urllib3/"),
    ("http.client / socket / ssl", r"(/http/client\.py|/socket\.py|/ssl\.py|/selectors\.py)"),
    ("json", r"/json/"),
    ("celery", r"/celery/"),
    ("kombu / redis-py", r"/(kombu|redis)/"),
    ("logging", r"/logging/"),
    ("threading / queue / concurrent.futures", r"/(threading|queue)\.py|/concurrent/futures/"),
    ("failover (own code)", r"/failover/"),
)
# Inclusive time of these functions of ours (matched on "function (failover/...").
OURS = (
    ("dispatch.send_batch (whole task)", r"^send_batch \(.*failover/engine/dispatch\.py"),
    ("dispatch._claim (claim rows)", r"^_claim \(.*failover/engine/dispatch\.py"),
    ("dispatch._messages (load rows)", r"^_messages \(.*failover/engine/dispatch\.py"),
    ("dispatch._send_piece (provider call)", r"^_send_piece \(.*failover/engine/dispatch\.py"),
    ("dispatch._record (record results)", r"^_record \(.*failover/engine/dispatch\.py"),
    ("audit.record_many (hash chain append)", r"^record_many \(.*failover/engine/audit\.py"),
    ("dispatch._complete_finished", r"^_complete_finished \(.*failover/engine/dispatch\.py"),
    ("relay.sweep (beat's sweep task)", r"^sweep \(.*failover/engine/relay\.py"),
    ("TwilioSMS._send_one", r"^_send_one \(.*failover/channels/twilio_sms\.py"),
    ("TwilioSMS.client (per-thread client)", r"^client \(.*failover/channels/twilio_sms\.py"),
    ("SendGridEmail.send", r"^send \(.*failover/channels/sendgrid_email\.py"),
    ("celery worker loop (not in a task)", r"^(start|asynloop|synloop|_receive_callback|on_task_received) \(.*celery/"),
)


def available() -> str | None:
    """None when py-spy can run here, else why not."""
    if _py_spy() is None:
        return "py-spy is not installed (make bench installs the bench extras)"
    return None


def _py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


@dataclass
class Recorder:
    """py-spy on each pid, from ``start`` until ``stop``."""

    directory: Path
    pids: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)

    def start(self) -> Recorder:
        binary = _py_spy()
        assert binary is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        for pid in self.pids:
            output = self.directory / f"worker-{pid}.txt"
            self.outputs.append(output)
            self.processes.append(
                subprocess.Popen(
                    [binary, "record", "--pid", str(pid), "--rate", str(RATE), "--gil", "--nonblocking"]
                    + ["--format", "raw", "--output", str(output)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    def stop(self) -> list[Path]:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return [path for path in self.outputs if path.exists()]


def summarise(files: list[Path], *, top: int = 12) -> dict[str, Any]:
    stacks: collections.Counter[str] = collections.Counter()
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    total = sum(stacks.values())
    by_library: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    self_frames: collections.Counter[str] = collections.Counter()
    libraries = [(label, re.compile(pattern)) for label, pattern in LIBRARIES]
    functions = [(label, re.compile(pattern)) for label, pattern in OURS]
    for stack, count in stacks.items():
        frames = stack.split(";")
        self_frames[_short(frames[-1])] += count
        by_library[_library(frames, libraries)] += count
        for label, pattern in functions:
            if any(pattern.search(frame) for frame in frames):
                ours[label] += count

    def share(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [
            {"what": what, "samples": n, "share": round(n / total, 3) if total else 0.0}
            for what, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "cpu_s_sampled": round(total / RATE, 1),
        "self_by_library": share(by_library),
        "inclusive_by_failover_function": share(ours),
        "top_self_frames": share(self_frames),
    }


def _library(frames: list[str], libraries: list[tuple[str, re.Pattern[str]]]) -> str:
    for frame in reversed(frames):
        for label, pattern in libraries:
            if pattern.search(frame):
                return label
    return "other (interpreter, stdlib)"


def _short(frame: str) -> str:
    """``name (path/to/site-packages/pkg/mod.py:12)`` → ``name (pkg/mod.py:12)``."""
    return re.sub(r"\(.*?(site-packages/|/lib/python3\.\d+/|/wt\d+/|/work/[^/]+/)", "(", frame)
