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

# Inclusive time of these functions of ours (a frame is "name (path:line)").
OURS = (
    ("dispatch.send_batch (the whole task)", r"^send_batch \(failover/engine/dispatch\.py"),
    ("dispatch._claim (claim the batch's rows)", r"^_claim \(failover/engine/dispatch\.py"),
    ("dispatch._messages (load the rows)", r"^_messages \(failover/engine/dispatch\.py"),
    (
        "dispatch._send_piece_async (one provider call, on the send loop)",
        r"^_send_piece_async \(failover/engine/dispatch\.py",
    ),
    ("slotpool: guard slots leased in blocks", r"\(failover/slotpool\.py"),
    (
        "the guard's backend calls (Redis scripts)",
        r"^(RedisBackend\.)?(exchange|acquire|release) \(failover/throttle\.py",
    ),
    ("dispatch._record (record 25 results)", r"^_record \(failover/engine/dispatch\.py"),
    ("audit.record_many (hash chain append)", r"^record_many \(failover/engine/audit\.py"),
    ("dispatch._complete_finished (is the activation done?)", r"^_complete_finished \(failover/engine/dispatch\.py"),
    ("relay.sweep (beat's sweep, run by a worker)", r"^sweep \(failover/engine/relay\.py"),
    ("SendGridEmail.send_async", r"^SendGridEmail\.send_async \("),
    ("imports at first use", r"^_find_and_load \("),
    ("requests: proxy settings from os.environ, per request", r"^Session\.merge_environment_settings \("),
)
# Threads, told apart by a frame their stacks contain.
THREADS = (
    ("the send loop (failover/sendloop.py)", "SendLoop._run ("),
    ("Celery task threads (--pool threads)", "apply_target (celery/concurrency/base.py"),
)
FAILOVER_PARTS = (
    ("failover/engine/audit.py", "failover: audit hash chain"),
    ("failover/engine/dispatch.py", "failover: dispatch"),
    ("failover/channels/", "failover: channels"),
    ("failover/", "failover: other"),
)
STDLIB = frozenset(sys.stdlib_module_names) | {"<frozen"}
_LOCATION = re.compile(r"\((.*):\d+\)$")


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
    by_module: collections.Counter[str] = collections.Counter()
    by_component: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    self_frames: collections.Counter[str] = collections.Counter()
    functions = [(label, re.compile(pattern)) for label, pattern in OURS]
    for stack, count in stacks.items():
        frames = stack.split(";")
        self_frames[frames[-1]] += count
        by_module[_module(frames[-1])] += count
        by_component[_component(frames)] += count
        by_thread[next((label for label, marker in THREADS if marker in stack), "worker main thread (consumer)")] += (
            count
        )
        for label, pattern in functions:
            if any(pattern.search(frame) for frame in frames):
                ours[label] += count

    def share(counter: collections.Counter[str], limit: int = top) -> list[dict[str, Any]]:
        return [
            {"what": what, "samples": n, "share": round(n / total, 3) if total else 0.0}
            for what, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "cpu_s_sampled": round(total / RATE, 1),
        "by_thread": share(by_thread),
        "by_component": share(by_component),
        "self_by_module": share(by_module),
        "inclusive_by_function": share(ours, len(OURS)),
        "top_self_frames": share(self_frames),
    }


def _path(frame: str) -> str:
    match = _LOCATION.search(frame)
    return match.group(1) if match else ""


def _module(frame: str) -> str:
    """The top-level module a frame runs in: ``sqlalchemy``, ``typing``, ``<frozen importlib...>``."""
    path = _path(frame)
    if path.startswith("<"):
        return path
    return path.split("/", 1)[0].removesuffix(".py") or "?"


def _component(frames: list[str]) -> str:
    """Who the time is for: the innermost frame outside the standard library, failover split by part.

    Standard-library time (typing checks, os.environ, the thread pool) is charged to the package that called it.
    """
    for frame in reversed(frames):
        path = _path(frame)
        module = _module(frame)
        if module.split(" ")[0] in STDLIB or module.startswith("<"):
            continue
        if module == "failover":
            return next(label for prefix, label in FAILOVER_PARTS if path.startswith(prefix))
        return module
    return "standard library only (thread bootstrap, idle loops)"
