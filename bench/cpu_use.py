"""Where the CPU went during a benchmark run, from Linux's ``/proc``: the web
processes, the load generator (this process), PostgreSQL, and everything else on the
machine (other jobs sharing it). Bench-only: the companion itself measures nothing."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Cores that other jobs may keep busy before a run counts as disturbed, and before one
#: starts: a machine shared with other work (the project's is) gives noisy figures.
OTHER_JOBS_LIMIT = 0.2


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds so far."""

    web: float
    load_generator: float
    postgresql: float
    machine_busy: float
    machine_total: float


def snapshot(web_pids: Sequence[int]) -> Snapshot:
    busy, total = _machine()
    return Snapshot(
        web=sum(_process(Path(f"/proc/{pid}/stat").read_text()) for pid in web_pids),
        load_generator=time.process_time(),
        postgresql=_postgres(),
        machine_busy=busy,
        machine_total=total,
    )


def cores_used(before: Snapshot, after: Snapshot, seconds: float) -> dict[str, float]:
    """Cores each part kept busy on average over ``seconds`` of wall time, and the
    machine's busy share; "other" is whatever else ran meanwhile."""
    web = after.web - before.web
    load_generator = after.load_generator - before.load_generator
    postgresql = after.postgresql - before.postgresql
    busy = after.machine_busy - before.machine_busy
    total = after.machine_total - before.machine_total
    other = max(busy - web - load_generator - postgresql, 0.0)
    seconds = seconds or 1.0
    return {
        "web": round(web / seconds, 2),
        "load_generator": round(load_generator / seconds, 2),
        "postgresql": round(postgresql / seconds, 2),
        "other": round(other / seconds, 2),
        "machine_busy": round(busy / total, 3) if total else 0.0,
    }


def _process(stat: str, *, reaped_children: bool = False) -> float:
    """User and system CPU seconds from a ``/proc/<pid>/stat`` line; with
    ``reaped_children``, those of its children that have exited too."""
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _postgres() -> float:
    """Every process named ``postgres``: the server and its backends. A backend that
    ends (a pool closes its overflow connections as soon as they are returned) hands its
    time to the server, which reaps it: counted there, in its children's time."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            line = stat.read_text()
        except OSError:
            continue  # the process has gone
        if line[line.index("(") + 1 : line.rindex(")")] == "postgres":
            total += _process(line, reaped_children=True)
    return total


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


async def wait_for_quiet(most_seconds: int) -> None:
    """Until the machine has been nearly idle for a second (the bench's own processes
    are idle then), or ``most_seconds`` have passed: then the run goes ahead anyway,
    and its figures say whether it was disturbed."""
    for _attempt in range(most_seconds):
        before = _machine()[0]
        started = time.monotonic()
        await asyncio.sleep(1)
        if (_machine()[0] - before) / (time.monotonic() - started) < OTHER_JOBS_LIMIT:
            return
