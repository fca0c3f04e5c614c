"""``memory-proxy up``: start a :class:`StackPlan`, watch it, stop it all together.

:class:`Supervisor` checks every port of the plan is free before anything starts, starts
the processes in order (each one ready before the next starts; every one a
:class:`ChildProcess`: the LiteLLM server a :class:`LiteLLMServer`, the proxies
``python -m memory_proxy.cli serve|legacy``), prints what runs where, then watches them
until Ctrl-C / SIGTERM (exit 0) or until one dies (reported with its exit code and last
log lines; exit 1), and stops them in reverse order. What to start is decided by
:mod:`memory_proxy.stack_plan`, without I/O.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.litellm_server import LiteLLMServer
from memory_proxy.processes import ChildProcess, ProcessStartError, ensure_port_free
from memory_proxy.stack_plan import ProcessSpec, StackPlan

__all__ = ["Supervisor"]

_POLL_SECONDS = 0.2


class _ShutdownRequested(BaseException):
    """Raised from the signal handler while starting: unwinds like KeyboardInterrupt."""


class Supervisor:
    """Runs a :class:`StackPlan`: start in order, watch, stop in reverse. Not reentrant.

    Logs go to ``run_dir/<role>.log``; ``run_dir/processes.json`` lists what runs where
    once everything is ready. ``grace`` is how long each process gets between SIGTERM
    and SIGKILL.
    """

    def __init__(
        self,
        plan: StackPlan,
        run_dir: Path,
        *,
        allow_weak_master_key: bool = False,
        grace: float = 10.0,
        ready_timeout: float = 90.0,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.plan = plan
        self.run_dir = Path(run_dir)
        self.allow_weak_master_key = allow_weak_master_key
        self.grace = grace
        self.ready_timeout = ready_timeout
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._running: list[tuple[ProcessSpec, ChildProcess]] = []
        self._shutdown = threading.Event()
        self._starting = False
        self.signal_received: int | None = None

    def run(self) -> int:
        """Check ports, start, watch until a signal (exit 0) or a death (exit 1); stop all."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        self._starting = True
        try:
            try:
                # Every port first: a clash found halfway would mean stopping what started.
                self.check_ports()
                self.start()
            finally:
                self._starting = False
            return self.watch()
        except ProcessStartError as error:
            self._say(self._err, f"memory-proxy up: {error}")
            return 1
        except _ShutdownRequested:
            if self._running:
                self._say(
                    self._out,
                    f"memory-proxy up: interrupted while starting the {self._running[-1][0].kind}",
                )
            return 0
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def check_ports(self) -> None:
        """Raise :class:`ProcessStartError` naming the first planned port already taken."""
        for spec in self.plan.processes:
            ensure_port_free(spec.host, spec.port, spec.kind)

    def start(self) -> None:
        """Start every planned process in order, each ready before the next one starts."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self._say(
            self._out,
            f"memory-proxy up: mode {self.plan.mode}, config {self.plan.config_path}, "
            f"logs in {self.run_dir}",
        )
        for spec in self.plan.processes:
            runner = self._runner(spec)
            # Listed before start(): a signal arriving mid-start still gets it stopped.
            self._running.append((spec, runner))
            runner.start()
            self._say(
                self._out,
                f"  {spec.kind:<15} {spec.url:<24} pid {runner.pid:<7} "
                f"log {runner.log_path}  ready in {runner.startup_seconds or 0:.1f} s",
            )
        total = time.monotonic() - began
        self._write_manifest(total)
        self._say(
            self._out,
            f"all {len(self._running)} ready in {total:.1f} s; Ctrl-C or SIGTERM stops them",
        )

    def watch(self) -> int:
        """Block until a signal asks for a stop (0) or a process dies (1, reported)."""
        while not self._shutdown.wait(_POLL_SECONDS):
            for spec, runner in self._running:
                code = runner.poll()
                if code is not None:
                    self._report_death(spec, runner, code)
                    return 1
        return 0

    def stop(self) -> None:
        """Stop every started process, the last started first."""
        self._starting = False
        if not self._running:
            return
        began = time.monotonic()
        while self._running:
            spec, runner = self._running.pop()
            pid = runner.pid  # a stopped LiteLLMServer forgets it
            runner.stop(self.grace)
            if pid is not None:
                self._say(self._out, f"  stopped {spec.kind} (pid {pid})")
        self._say(self._out, f"memory-proxy up: all stopped in {time.monotonic() - began:.1f} s")

    # -- internals --------------------------------------------------------------------------

    def _runner(self, spec: ProcessSpec) -> ChildProcess:
        log_path = self.run_dir / spec.log_name
        if spec.role == "litellm":
            return LiteLLMServer(
                self.plan.config_path,
                host=spec.host,
                port=spec.port,
                log_path=log_path,
                allow_weak_master_key=self.allow_weak_master_key,
                ready_timeout=self.ready_timeout,
            )
        return ChildProcess(
            spec.kind,
            spec.argv,
            host=spec.host,
            port=spec.port,
            log_path=log_path,
            ready_path=spec.ready_path,
            ready_timeout=self.ready_timeout,
            # The proxies import litellm; its log lines should reach the file as they happen.
            env={**LITELLM_OFFLINE_ENV, "PYTHONUNBUFFERED": "1"},
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.signal_received is None
        self.signal_received = signum
        self._shutdown.set()
        # While starting, unwind the blocking start; later the watch loop sees the event.
        # Only once: a second Ctrl-C must not interrupt the stop it started.
        if first and self._starting:
            self._starting = False
            raise _ShutdownRequested

    def _report_death(self, spec: ProcessSpec, runner: ChildProcess, code: int) -> None:
        tail = runner.log_tail()
        how = f"exit code {code}"
        if code < 0:
            with contextlib.suppress(ValueError):  # a signal number Python has no name for
                how += f" (killed by {signal.Signals(-code).name})"
        self._say(
            self._err,
            f"memory-proxy up: the {spec.kind} (pid {runner.pid}, {spec.url}) exited "
            f"unexpectedly with {how}; stopping the others\n"
            f"last {len(tail)} lines of {runner.log_path}:\n" + "\n".join(tail),
        )

    def _write_manifest(self, total_seconds: float) -> None:
        manifest = {
            "mode": self.plan.mode,
            "config": str(self.plan.config_path),
            "supervisor_pid": os.getpid(),
            "startup_seconds": round(total_seconds, 3),
            "processes": [
                {
                    "role": spec.role,
                    "kind": spec.kind,
                    "url": spec.url,
                    "pid": runner.pid,
                    "log": str(runner.log_path),
                    "startup_seconds": round(runner.startup_seconds or 0.0, 3),
                }
                for spec, runner in self._running
            ],
        }
        (self.run_dir / "processes.json").write_text(json.dumps(manifest, indent=2) + "\n")

    @staticmethod
    def _say(stream: TextIO, line: str) -> None:
        print(line, file=stream, flush=True)
