"""CPU time and memory of a server process and everything in its process group, from /proc.

Each server the bench starts leads its own process group (``start_new_session``), so a
worker it forks is found by its group id and counted with it. CPU is ``utime + stime``
of ``/proc/<pid>/stat`` in clock ticks; memory is ``VmRSS`` and ``VmHWM`` (the peak RSS
the kernel kept) of ``/proc/<pid>/status``. A process that is gone or unreadable counts
as nothing: a measurement never fails a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GroupSnapshot", "group_members", "snapshot", "snapshot_all"]

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class GroupSnapshot:
    """One reading of a process group: CPU seconds so far, current and peak RSS (bytes)."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    processes: int

    def cpu_since(self, earlier: GroupSnapshot) -> float:
        return max(0.0, self.cpu_seconds - earlier.cpu_seconds)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return raw[raw.rfind(")") + 2 :].split()


def group_members(leader: int) -> list[int]:
    """The leader and every live process in its process group."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # After the name: state(0) ppid(1) pgrp(2).
        if fields is not None and int(fields[2]) == leader:
            members.append(int(entry.name))
    if leader not in members and _stat_fields(leader) is not None:
        members.append(leader)  # a leader that left its own group still counts
    return members


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def _memory(pid: int) -> tuple[int, int]:
    rss = peak = 0
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0, 0
    for line in lines:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return rss, peak


def snapshot(leader: int) -> GroupSnapshot:
    """CPU and memory of ``leader``'s group; sums over its processes."""
    cpu = 0.0
    rss = peak = 0
    members = group_members(leader)
    for pid in members:
        cpu += _cpu_seconds(pid)
        member_rss, member_peak = _memory(pid)
        rss += member_rss
        peak += member_peak
    return GroupSnapshot(cpu, rss, peak, len(members))


def snapshot_all(leaders: Iterable[int]) -> dict[int, GroupSnapshot]:
    return {leader: snapshot(leader) for leader in leaders}
