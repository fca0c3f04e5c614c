"""Run the Locust load test (``loadtests/locustfile.py``) headless, in a subprocess.

Locust is never imported here: ``import locust`` monkey-patches the standard library
with gevent, so it runs only as ``python -m locust`` with the project root as working
directory (where ``loadtests`` and ``harness`` import from). Its output goes to
``locust.log``; its verdict comes from the exit code its ``quitting`` listener sets and
from the JSON summary it writes (see ``loadtests/slo.py``).

The child runs in a session of its own, so a Ctrl-C in the terminal reaches only the
driver, which then stops Locust with SIGINT: Locust writes its HTML report, shuts down
cleanly and still writes its CSV and summary for what it measured. The child starts with
SIGINT at its default even when we inherited it ignored; SIGTERM, the fallback for a
child that still does not stop, skips the HTML.

With ``workers`` > 0 it is Locust's own distributed mode: the process above is the
master (it spawns no users; it gathers the workers' stats, writes the same CSV, HTML and
summary, and sets the exit code), and ``workers`` worker processes on this machine
generate the load. More workers can join from other machines (``--master-host``) when
the master listens beyond loopback (``master_bind``) and expects them
(``remote_workers``). Each worker writes how many requests it sent to
``worker-<n>.json`` (``LOAD_WORKER_SUMMARY``), so a run can show that the master's totals
are the sum of its workers'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.loopback import free_port
from harness.paths import LOADTESTS_DIR, REPO_ROOT

__all__ = ["LOCUSTFILE", "LocustJob", "LocustOutcome", "run_locust"]

LOCUSTFILE = LOADTESTS_DIR / "locustfile.py"
# Beyond the planned duration: start-up, the stop of running requests, the report.
_GRACE_S = 60.0
# How long each stop signal gets before the next, harder one.
_STOP_SIGNALS = ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0))
# How long a worker gets to quit by itself once its master has (it reports its last
# stats first).
_WORKER_QUIT_S = 15.0


@dataclass(frozen=True)
class LocustJob:
    """One headless Locust run against one target."""

    url: str
    out_dir: Path
    key: str
    profile: str = "criterion"
    users: int = 50
    spawn_rate: float | None = None  # None: the profile's default
    duration_s: float = 60.0
    seed: int = 1
    max_failure_ratio: float = 0.0
    p95_ms: float = 5000.0
    corpus: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 0  # local worker processes; 0: one process, no master
    remote_workers: int = 0  # workers the master also waits for, from other machines
    master_bind: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port (local workers only)

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0

    def worker_summary_path(self, index: int) -> Path:
        return self.out_dir / f"worker-{index}.json"

    @property
    def csv_prefix(self) -> Path:
        return self.out_dir / "locust"

    @property
    def html_path(self) -> Path:
        return self.out_dir / "report.html"

    @property
    def summary_path(self) -> Path:
        return self.out_dir / "summary.json"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "locust.log"

    @property
    def effective_spawn_rate(self) -> float:
        if self.spawn_rate is not None:
            return self.spawn_rate
        if self.profile == "soak":
            return max(1.0, self.users / 10)  # a gentle start: the steady state matters
        return float(self.users)  # criterion: everyone at once

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        cmd += ["--host", self.url, "--csv", str(self.csv_prefix), "--html", str(self.html_path)]
        cmd += ["--only-summary", "--stop-timeout", "5"]
        if self.profile != "ramp":  # the ramp's shape class sets users and the end itself
            cmd += ["-u", str(self.users), "-r", f"{self.effective_spawn_rate:g}"]
            cmd += ["-t", f"{max(1, round(self.duration_s))}s"]
        if self.distributed:
            cmd += ["--master", "--expect-workers", str(self.workers + self.remote_workers)]
            cmd += ["--master-bind-host", self.master_bind]
            cmd += ["--master-bind-port", str(self.master_port)]
        return cmd

    def worker_command(self) -> list[str]:
        """A local worker: joins the master on loopback, sends the load."""
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
        return cmd + ["--master-host", "127.0.0.1", "--master-port", str(self.master_port)]

    def worker_environment(self, index: int) -> dict[str, str]:
        env = self.environment()
        del env["LOAD_SUMMARY"]  # the master's; a worker writes its own counts
        env["LOAD_WORKER_SUMMARY"] = str(self.worker_summary_path(index))
        env["LOAD_WORKER_INDEX"] = str(index)
        return env

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(self.extra_env)
        env.update(
            {
                "LOAD_API_KEY": self.key,
                "LOAD_SEED": str(self.seed),
                "LOAD_PROFILE": self.profile,
                "LOAD_PEAK": str(self.users),
                "LOAD_DURATION_S": f"{self.duration_s:g}",
                "LOAD_MAX_FAILURE_RATIO": f"{self.max_failure_ratio:g}",
                "LOAD_P95_MS": f"{self.p95_ms:g}",
                "LOAD_SUMMARY": str(self.summary_path),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        if self.corpus is not None:
            env["LOAD_CORPUS"] = str(self.corpus)
        return env


@dataclass(frozen=True)
class LocustOutcome:
    exit_code: int | None  # None: it had to be killed
    summary: dict[str, Any] | None
    interrupted: bool = False
    timed_out: bool = False


def run_locust(job: LocustJob) -> LocustOutcome:
    """Run ``job`` to its end (or to Ctrl-C, after which Locust is stopped cleanly)."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if job.distributed and not job.master_port:
        job = dataclasses.replace(job, master_port=free_port())
    interrupted = timed_out = False
    with contextlib.ExitStack() as logs:
        process = _start(
            job.command(), job.environment(), logs.enter_context(job.log_path.open("wb"))
        )
        workers = [
            _start(
                job.worker_command(),
                job.worker_environment(i),
                logs.enter_context((job.out_dir / f"locust-worker-{i}.log").open("wb")),
            )
            for i in range(job.workers)
        ]
        try:
            process.wait(timeout=job.duration_s + _GRACE_S)
        except KeyboardInterrupt:
            interrupted = True
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            exit_code = _stop(process)
            # A worker quits when its master does; one that does not is stopped as well.
            for worker in workers:
                _stop(worker, first_wait_s=_WORKER_QUIT_S)
    summary = _read_summary(job.summary_path)
    if summary is not None and job.workers:
        summary["workers"] = [_read_summary(job.worker_summary_path(i)) for i in range(job.workers)]
    return LocustOutcome(exit_code, summary, interrupted, timed_out)


def _start(command: list[str], env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # A shell that runs us in the background hands SIGINT down ignored, and Python
        # keeps an ignored SIGINT ignored: Locust would then miss our stop and lose
        # its HTML report to the SIGTERM fallback.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(process: subprocess.Popen[bytes], *, first_wait_s: float = 0.0) -> int | None:
    if first_wait_s:
        try:
            return process.wait(timeout=first_wait_s)
        except subprocess.TimeoutExpired:
            pass
    for stop_signal, wait_s in _STOP_SIGNALS:
        if process.poll() is not None:
            return process.returncode
        process.send_signal(stop_signal)
        try:
            return process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait()
    return None


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
