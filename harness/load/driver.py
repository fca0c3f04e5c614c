"""``harness load``: the same Locust load against each target in turn, measured and stored.

For each target (``NAME=URL``, loopback only unless ``--allow-remote``)::

    GET /health/liveliness --down--> reported "down", no load sent
        | up
        v
    warm-up: the corpus's successful requests, --warmup times (not measured)
    sample the target's RSS and CPU every second (PID given, or found by its port)
    run Locust headless (loadtests/locustfile.py, same seed and corpus for every target)
        -> reports/load/<UTC timestamp>/<target>/ locust_*.csv, report.html, summary.json
    store the stats as a load run and the samples as process samples

then prints the targets side by side. Exit status: 0 when every target met the SLO
(``load.max_failure_ratio``, ``load.p95_ms`` of ``config/harness.yaml``), 1 when one
missed it, was down or failed to run, 130 after Ctrl-C (what was measured is still
written and stored). Nothing here imports Locust (see :mod:`harness.load.locust_job`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx

from harness.corpus import CORPUS_PATH, load_corpus
from harness.load.locust_job import LocustJob, run_locust
from harness.load.process_sampler import ProcessSampler, find_listening_pid
from harness.load.results import TargetResult, format_table
from harness.load.served import history_counts, with_requests
from harness.load.targets import (
    LoadTarget,
    check_loopback,
)
from harness.load.warmup import SETUP, UNHEALTHY, warmup_verdict
from harness.replay.sender import ReplayOutcome, ReplayPlan, replay
from harness.store.capture_store import CaptureStore

__all__ = ["HEALTH_PATH", "PROFILE_DURATIONS", "LoadPlan", "LoadReport", "run_load"]

PROFILE_DURATIONS = {"criterion": 60.0, "ramp": 120.0, "soak": 1800.0}
HEALTH_PATH = "/health/liveliness"


@dataclass(frozen=True)
class LoadPlan:
    """Everything one ``harness load`` does; tests build their own."""

    targets: tuple[LoadTarget, ...]
    key: str
    profile: str = "criterion"
    users: int = 50
    duration_s: float = 60.0
    spawn_rate: float | None = None
    seed: int = 1
    out_dir: Path = Path("reports/load")
    store: Path | str | None = Path("reports/shadow.db")  # a file or a postgresql:// URL
    max_failure_ratio: float = 0.0
    p95_ms: float = 5000.0
    allow_remote: bool = False
    corpus: Path | None = None
    health_timeout_s: float = 5.0
    warmup_loops: int = 1  # the corpus's successes sent this many times before measuring
    warmup_deadline_s: float = 120.0  # the whole warm-up, per target
    # One warm-up request: a healthy proxy answers in ms, a cold one in seconds (lazy
    # provider imports); a stack in its cooldown cascade takes 60 s, and is cut here.
    warmup_timeout_s: float = 20.0
    extra_env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 0  # Locust worker processes under a master; 0: one Locust process
    remote_workers: int = 0  # workers joining from other machines (--master-host)
    master_bind: str = "127.0.0.1"
    master_port: int = 0


@dataclass
class LoadReport:
    run_dir: Path
    results: list[TargetResult]
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if self.results and all(r.ok for r in self.results) else 1


def run_load(plan: LoadPlan, *, out: TextIO | None = None) -> LoadReport:
    """Run the plan (see the module docstring); the report holds one result per target."""
    out = out or sys.stdout
    check_loopback(plan.targets, plan.allow_remote)
    run_dir = plan.out_dir.resolve() / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = LoadReport(run_dir, [])
    for target in plan.targets:
        try:
            result = _run_target(plan, target, run_dir / target.name, out)
        except KeyboardInterrupt:
            report.interrupted = True
            break
        report.results.append(result)
        if plan.store is not None:
            _store(plan, run_dir.name, result)
        if result.status == "interrupted":
            report.interrupted = True
            break
    print(file=out)
    print(format_table(report.results), file=out)
    print(f"\nfiles: {run_dir}", file=out)
    return report


def _run_target(plan: LoadPlan, target: LoadTarget, out_dir: Path, out: TextIO) -> TargetResult:
    down = _probe(target.url, plan.health_timeout_s)
    if down is not None:
        print(f"[{target.name}] {target.url} is down: {down}; no load sent", file=out)
        return TargetResult(target.name, target.url, "down", reason=down)
    if plan.warmup_loops > 0:
        stopped = _warm_up(plan, target, out)
        if stopped is not None:
            kind, _, why = stopped.partition(": ")
            status = "misconfigured" if kind == SETUP else "unhealthy"
            print(f"[{target.name}] {status}: {why}; no load sent", file=out, flush=True)
            return TargetResult(target.name, target.url, status, reason=why)
    pid = target.pid
    if pid is None and target.port is not None:
        pid = find_listening_pid(target.port)
    job = LocustJob(
        url=target.url,
        out_dir=out_dir,
        key=plan.key,
        profile=plan.profile,
        users=plan.users,
        spawn_rate=plan.spawn_rate,
        duration_s=plan.duration_s,
        seed=plan.seed,
        max_failure_ratio=plan.max_failure_ratio,
        p95_ms=plan.p95_ms,
        corpus=plan.corpus,
        extra_env=plan.extra_env,
        workers=plan.workers,
        remote_workers=plan.remote_workers,
        master_bind=plan.master_bind,
        master_port=plan.master_port,
    )
    print(
        f"[{target.name}] {target.url}: {plan.profile}, {plan.users} users, "
        f"{plan.duration_s:g} s, seed {plan.seed}, pid {pid if pid is not None else 'unknown'}",
        file=out,
        flush=True,
    )
    sampler = ProcessSampler(target.name, pid).start()
    started = time.time()
    try:
        outcome = run_locust(job)
    finally:
        samples = sampler.stop()
    result = TargetResult(
        target.name,
        target.url,
        "ok",
        started_at=started,
        finished_at=time.time(),
        pid=pid,
        exit_code=outcome.exit_code,
        summary=outcome.summary,
        samples=samples,
        out_dir=out_dir,
    )
    history = history_counts(Path(f"{job.csv_prefix}_stats_history.csv"))
    result.samples = with_requests(samples, started, history, result.requests().get("count"))
    slo = (outcome.summary or {}).get("slo") or {}
    if outcome.interrupted:
        result.status, result.reason = "interrupted", "stopped by Ctrl-C; partial results"
    elif outcome.timed_out:
        result.status, result.reason = "error", "Locust overran its duration and was stopped"
    elif outcome.summary is None:
        result.status = "error"
        result.reason = f"Locust exited {outcome.exit_code} without a summary: {job.log_path}"
    elif slo.get("missed") or outcome.exit_code != 0:
        result.status = "slo-missed"
        result.reason = "; ".join(slo.get("missed") or [f"Locust exited {outcome.exit_code}"])
    detail = f": {result.reason}" if result.reason else ""
    print(f"[{target.name}] {result.status}{detail}", file=out)
    return result


def _warm_up(plan: LoadPlan, target: LoadTarget, out: TextIO) -> str | None:
    """Send the corpus's expected successes; why the run must stop (a setup failure, an
    unhealthy target, the deadline), else None. Shows its progress as it goes."""
    # A fresh proxy answers its first requests seconds late (litellm imports providers
    # lazily): that is start-up, not the load's latency.
    entries = [e for e in load_corpus(plan.corpus or CORPUS_PATH) if e.expects_success]
    step = max(1, len(entries) * plan.warmup_loops // 4)

    def progress(done: int, total: int, outcome: ReplayOutcome) -> None:
        if done % step == 0 or done == total:
            print(f"[{target.name}] warm-up: {done}/{total}", file=out, flush=True)

    summary = replay(
        ReplayPlan(
            entries,
            target.url,
            plan.key,
            loop=plan.warmup_loops,
            progress=False,
            timeout=plan.warmup_timeout_s,
            stop_when=warmup_verdict,
            deadline_s=plan.warmup_deadline_s,
            on_outcome=progress,
        )
    )
    print(
        f"[{target.name}] warm-up: {summary.total} requests in {summary.duration_s:.1f} s, "
        f"{len(summary.mismatches)} not as expected",
        file=out,
        flush=True,
    )
    if summary.stopped is not None and summary.stopped.startswith("deadline"):
        return f"{UNHEALTHY}: warm-up {summary.stopped}"
    return summary.stopped


def _probe(url: str, timeout: float) -> str | None:
    """None when the target answers its liveness check; else why it counts as down."""
    try:
        reply = httpx.get(url + HEALTH_PATH, timeout=timeout, trust_env=False)
    except httpx.TimeoutException:
        return f"no answer to GET {HEALTH_PATH} within {timeout:g} s"
    except httpx.HTTPError as exc:
        return f"GET {HEALTH_PATH} failed: {type(exc).__name__}: {exc}"
    # A 404 is still a live server (e.g. the sandbox, which has no such route).
    if reply.status_code >= 500:
        return f"GET {HEALTH_PATH} answered {reply.status_code}"
    return None


def _store(plan: LoadPlan, run_name: str, result: TargetResult) -> None:
    assert plan.store is not None
    params = {
        "profile": plan.profile,
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "duration_s": plan.duration_s,
        "seed": plan.seed,
        "url": result.url,
        "corpus": str(plan.corpus) if plan.corpus else "built-in",
        "max_failure_ratio": plan.max_failure_ratio,
        "p95_ms": plan.p95_ms,
        "warmup_loops": plan.warmup_loops,
    }
    with CaptureStore(plan.store, spill=False) as store:
        # Measured within the store's latest run (the shadow run open while the load ran,
        # as in the demo), so that its report reads it; none in a store without runs.
        latest = store.latest_run()
        result.run_id = store.add_load_run(
            f"load-{plan.profile}-{run_name}",
            target=result.name,
            started_at=result.started_at,
            finished_at=result.finished_at,
            params=params,
            results=result.results(),
            run_id=latest.id if latest is not None else None,
        )
        store.add_process_samples(result.run_id, result.samples)
