"""Make a process yield the CPU: a nice value, and optionally Linux's SCHED_IDLE policy.

Shadow mode's own work (the mirror sidecar, and in the bench the mirror's target) must
not take CPU time the primary wants. A nice value only weights the share: on a host
whose cores are all busy, a niced process still runs whenever it wins the scheduler's
tie-breaks, and every wake-up of the primary may wait behind it. Under SCHED_IDLE a
process runs only on time no normal process wants, and a waking normal process preempts
it at once. Both are per thread on Linux, so every thread of the process is set; threads
started later inherit the setting of the thread that starts them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from pathlib import Path

__all__ = ["yield_cpu"]


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(Path("/proc") / str(pid) / "task")]
    except OSError:
        return [pid]


def yield_cpu(
    pid: int = 0, *, nice: int = 0, idle: bool = False, cpus: Collection[int] = ()
) -> None:
    """Lower ``pid`` (0: this process) to ``nice``, with ``idle`` to SCHED_IDLE, and with
    ``cpus`` keep it on those cores (its caches then stay off the primary's cores)."""
    target = pid or os.getpid()
    for tid in _threads(target):
        # A thread that ended meanwhile, or a platform without the call: nothing to lower.
        with contextlib.suppress(OSError, AttributeError):
            if nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            if idle:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            if cpus:
                os.sched_setaffinity(tid, set(cpus))
