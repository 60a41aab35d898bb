"""CPU seconds spent by processes during a benchmark, from ``/proc`` (Linux).

The machine's two cores are shared by the web processes, the workers, PostgreSQL and the
load generator, so wall-clock rates move with whatever else runs; CPU seconds per operation,
per role, say where the time goes and compare runs taken on a busy machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """Return (parent pid, user + system CPU seconds) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree(pid: int) -> dict[int, float]:
    """Return the CPU seconds of ``pid`` and of each of its descendants, by pid."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    wanted, found = {pid}, {}
    while wanted:
        current = wanted.pop()
        if current in stats:
            found[current] = stats[current][1]
            wanted |= {child for child, (parent, _) in stats.items() if parent == current}
    return found


def backends(admin_url: str, db_name: str) -> dict[int, float]:
    """Return the CPU seconds of each PostgreSQL backend connected to ``db_name``, by pid."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        pids = [
            row[0]
            for row in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (db_name,)
            )
        ]
    return {pid: stat[1] for pid in pids if (stat := _stat(pid)) is not None}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots by the processes alive at the second one."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
