"""CPU time and peak memory of processes, and how busy the whole machine is, from /proc."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM: the process's peak resident set size, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (e.g. a PostgreSQL postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process tree as it is now; ended children are not counted (sample before and after)."""
    return sum(cpu_seconds(pid) for pid in tree(root))


@dataclass(frozen=True)
class MachineSample:
    at: float
    busy: float  # CPU seconds spent busy on all cores since boot
    total: float
    load1: float

    @classmethod
    def now(cls) -> MachineSample:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(value) for value in first[:8]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return cls(
            time.time(),
            (sum(ticks) - idle) / CLOCK_TICKS,
            sum(ticks) / CLOCK_TICKS,
            float(Path("/proc/loadavg").read_text().split()[0]),
        )


def machine_busy(before: MachineSample, after: MachineSample, ours: float = 0.0) -> dict[str, float]:
    """Cores busy on average between two samples (2.0 = both cores of this machine).

    ``ours`` is the CPU seconds the measured processes used meanwhile; the rest
    of the busy time belongs to whatever else runs on the machine.
    """
    wall = max(after.at - before.at, 1e-9)
    busy = (after.busy - before.busy) / wall
    return {
        "cores": os.cpu_count() or 1,
        "busy_cores": round(busy, 2),
        "ours_cores": round(ours / wall, 2),
        "foreign_cores": round(max(0.0, busy - ours / wall), 2),
        "load1": after.load1,
    }
