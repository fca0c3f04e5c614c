"""Sample a target process's memory and CPU once a second while a load run goes on.

psutil comes with Locust (a dependency of it), so wherever ``harness load`` can run,
psutil is there. A process that cannot be found or read gives samples with ``None``
values instead of an error: a missing measurement must not stop a load run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

from harness.store.capture_store import ProcessSample

__all__ = ["ProcessSampler", "find_listening_pid", "read_process"]


def find_listening_pid(port: int) -> int | None:
    """The PID of the process listening on TCP ``port`` (None when unknown or not ours)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def read_process(pid: int) -> tuple[int | None, float | None]:
    """(RSS bytes, user + system CPU seconds) of ``pid``; Nones when it cannot be read."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            rss = process.memory_info().rss
            cpu = process.cpu_times()
        return int(rss), float(cpu.user + cpu.system)
    except (psutil.Error, OSError):
        return None, None


class ProcessSampler:
    """A daemon thread taking one sample now, one every ``interval`` s, and one at ``stop``."""

    def __init__(
        self,
        target: str,
        pid: int | None,
        *,
        interval: float = 1.0,
        read: Callable[[int], tuple[int | None, float | None]] = read_process,
    ) -> None:
        self.target = target
        self.pid = pid
        self.samples: list[ProcessSample] = []
        self._interval = interval
        self._read = read
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"sampler:{target}", daemon=True)

    def start(self) -> ProcessSampler:
        if self.pid is not None:
            self._started = time.monotonic()
            self._sample()
            self._thread.start()
        return self

    def stop(self) -> list[ProcessSample]:
        if self.pid is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5)
            self._sample()
        return list(self.samples)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        assert self.pid is not None
        rss, cpu = self._read(self.pid)
        self.samples.append(ProcessSample(self.target, time.monotonic() - self._started, rss, cpu))
