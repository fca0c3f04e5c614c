"""One bench run: start every path, warm each up, measure rounds, gate, write the results.

::

    start sandbox + the paths' servers (logs under <out>/<UTC time>/logs/)
    warm-up: --warmup requests per path and case, not measured
    for each round, case, path (path order rotated per round):
        wait until every server is idle (the shadow's mirror has drained)
        CPU/RSS snapshot -> --requests requests, --concurrency at a time -> snapshot
    --soak N: N more requests to the SDK proxy, RSS before and after
    medians per (path, case) -> targets -> results.json + results.md

Only one path carries load at a time, so no measurement is made under another's load.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import yaml

from harness.bench.cases import BenchCase, HttpCall
from harness.bench.driver import LoadGenerator
from harness.bench.loadgen import LoadOutcome, LoadSpec
from harness.bench.model import (
    MB,
    BenchResult,
    Measurement,
    PathInfo,
    SoakResult,
)
from harness.bench.paths import BENCH_SANDBOX_ARGS, BenchPath, start_paths
from harness.bench.procstat import GroupSnapshot, snapshot
from harness.bench.render import write_results
from harness.bench.targets import check_targets
from harness.sandbox.config_file import write_sandbox_config
from harness.stack import Stack
from harness.stats import percentile
from memory_proxy.config import load_config

__all__ = ["BenchPlan", "run_bench"]

# A server is idle when it used less than this share of a core over a settle interval.
IDLE_SHARE = 0.05
SETTLE_INTERVAL = 0.25
SOAK_CHUNK = 2000


@dataclass(frozen=True)
class BenchPlan:
    paths: Sequence[str]
    cases: Sequence[BenchCase]
    requests: int = 1000
    concurrency: int = 50
    rounds: int = 3
    warmup: int = 300
    soak: int = 0
    out: Path = Path("reports/bench")
    max_seconds: float = 180.0  # per measured window; what is left then counts as failed
    rate: float = 0.0  # paced windows (requests per second); 0: closed loop, saturating
    settle_seconds: float = 180.0  # a niced mirror target may take a while to drain
    sandbox_args: Sequence[str] = field(default_factory=tuple)
    mirror_nice: int = 19
    mirror_idle: bool = True
    mirror_cpus: Sequence[int] = ()
    mirror_rate: float = 0.0  # the shadow's shadow.max_rate; 0: as harness.yaml says
    metrics: bool = True  # the proxies' memory_proxy.metrics (off: to measure its cost)


class _Bench:
    def __init__(self, plan: BenchPlan, folder: Path, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.folder = folder
        self.say = say
        self.mirrors: list[BenchPath] = []  # paths whose mirror must drain between windows

    def spec(self, call: HttpCall, requests: int) -> LoadSpec:
        return LoadSpec(
            url=call.url,
            headers=call.headers,
            body=call.body.decode(),
            stream=call.stream,
            api=call.api,
            requests=requests,
            concurrency=self.plan.concurrency,
            max_seconds=self.plan.max_seconds,
            rate=self.plan.rate,
        )

    def settle(self, leaders: Sequence[int]) -> float:
        """Wait until every mirror has drained and every server in ``leaders`` is idle."""
        began = time.monotonic()
        for path in self.mirrors:
            self.drain(path)
        deadline = time.monotonic() + self.plan.settle_seconds
        before = _total_cpu(leaders)
        while time.monotonic() < deadline:
            time.sleep(SETTLE_INTERVAL)
            now = _total_cpu(leaders)
            if now - before < IDLE_SHARE * SETTLE_INTERVAL:
                break
            before = now
        return time.monotonic() - began

    def drain(self, path: BenchPath) -> None:
        """Wait until the shadow's mirror queue is empty (a starved mirror looks idle)."""
        deadline = time.monotonic() + self.plan.settle_seconds
        while time.monotonic() < deadline and _mirror_pending(path) > 0:
            time.sleep(SETTLE_INTERVAL)

    def measure(
        self,
        loadgen: LoadGenerator,
        path: BenchPath,
        case: BenchCase,
        call: HttpCall,
        round_no: int,
        everyone: Sequence[int],
    ) -> Measurement:
        self.settle(everyone)
        mirrored_before = _mirrored(path)
        before = {role: snapshot(pid) for role, pid in path.processes.items()}
        side_before = {role: snapshot(pid) for role, pid in path.side.items()}
        outcome = loadgen.run(self.spec(call, self.plan.requests))
        after = {role: snapshot(pid) for role, pid in path.processes.items()}
        side_cpu: dict[str, float] = {}
        drain_cpu = 0.0
        mirrored = 0
        if path.side:
            # The mirror's work goes on after the client's answer: wait for it to drain.
            self.settle(everyone)
            side_cpu = {
                role: snapshot(pid).cpu_since(side_before[role]) for role, pid in path.side.items()
            }
            drained = {role: snapshot(pid) for role, pid in path.processes.items()}
            drain_cpu = sum(drained[role].cpu_since(after[role]) for role in after)
            mirrored = _mirrored(path) - mirrored_before
        measured = _measurement(path, case, round_no, self.plan.requests, outcome, before, after)
        return replace(
            measured, side_cpu_seconds=side_cpu, drain_cpu_seconds=drain_cpu, mirrored=mirrored
        )

    def soak(
        self,
        loadgen: LoadGenerator,
        path: BenchPath,
        calls: Sequence[HttpCall],
        everyone: Sequence[int],
    ) -> SoakResult:
        pid = path.processes["sdk"]
        self.settle(everyone)
        start = snapshot(pid).rss_bytes
        samples = [start / MB]
        sent = ok = 0
        turn = 0
        while sent < self.plan.soak:
            count = min(SOAK_CHUNK, self.plan.soak - sent)
            outcome = loadgen.run(self.spec(calls[turn % len(calls)], count))
            turn += 1
            sent += count
            ok += outcome.ok
            samples.append(snapshot(pid).rss_bytes / MB)
        self.settle(everyone)
        end = snapshot(pid).rss_bytes / MB
        samples.append(end)
        return SoakResult(sent, ok, start / MB, end, max(samples), samples)


def _say(text: str) -> None:
    print(text, flush=True)


def run_bench(plan: BenchPlan, say: Callable[[str], None] = _say) -> tuple[BenchResult, Path]:
    """Run ``plan``; the result and the folder its files were written to."""
    started_at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = plan.out / started_at
    bench = _Bench(plan, folder, say)
    result = BenchResult(
        started_at=started_at,
        settings={
            "requests": plan.requests,
            "concurrency": plan.concurrency,
            "rounds": plan.rounds,
            "warmup": plan.warmup,
            "soak": plan.soak,
            "paths": list(plan.paths),
            "cases": [c.name for c in plan.cases],
            "sandbox_args": list(plan.sandbox_args),
            "mirror_nice": plan.mirror_nice,
            "mirror_idle": plan.mirror_idle,
            "mirror_cpus": list(plan.mirror_cpus),
            "mirror_rate": plan.mirror_rate,
            "rate": plan.rate,
            "metrics": plan.metrics,
        },
        machine=_machine(),
        paths=[],
        cases=[c.name for c in plan.cases],
    )
    say(f"harness bench: results in {folder}")
    with Stack(folder / "logs") as stack:
        sandbox = stack.sandbox(*BENCH_SANDBOX_ARGS, *plan.sandbox_args)
        config_path = write_sandbox_config(sandbox.url, folder / "sandbox.yaml")
        if not plan.metrics:
            _turn_metrics_off(config_path)
        config = load_config(config_path)
        say(f"  sandbox ready in {sandbox.startup_seconds:.1f} s; starting {', '.join(plan.paths)}")
        paths = start_paths(
            stack,
            plan.paths,
            config_path,
            sandbox,
            mirror_nice=plan.mirror_nice,
            mirror_idle=plan.mirror_idle,
            mirror_cpus=plan.mirror_cpus,
            mirror_rate=plan.mirror_rate,
            sandbox_args=plan.sandbox_args,
        )
        result.paths = [
            PathInfo(p.name, p.ready_seconds, p.startup_seconds, list(p.processes), list(p.side))
            for p in paths.values()
        ]
        bench.mirrors = [p for p in paths.values() if p.side]
        everyone = sorted(
            {pid for p in paths.values() for pid in [*p.processes.values(), *p.side.values()]}
        )
        calls = {
            (p.name, c.name): (
                c.direct_call(config)
                if p.is_direct
                else c.proxy_call(p.url, config.general.master_key)
            )
            for p in paths.values()
            for c in plan.cases
            if _serves(p.name, c)
        }
        for p in paths.values():
            for c in plan.cases:
                if not _serves(p.name, c):
                    result.notes.append(
                        f"{p.name} {c.name}: not measured (the LiteLLM server answers it through "
                        "the Responses API, which the sandbox does not serve)"
                    )
        with LoadGenerator(folder / "logs" / "loadgen.log") as loadgen:
            if plan.warmup > 0:
                for p in paths.values():
                    for c in plan.cases:
                        if (p.name, c.name) not in calls:
                            continue
                        outcome = loadgen.run(bench.spec(calls[(p.name, c.name)], plan.warmup))
                        say(f"  warm-up {p.name:8} {c.name:16} {_brief(outcome)}")
            names = list(paths)
            for round_no in range(plan.rounds):
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for c in plan.cases:
                    for name in order:
                        if (name, c.name) not in calls:
                            continue
                        m = bench.measure(
                            loadgen, paths[name], c, calls[(name, c.name)], round_no, everyone
                        )
                        result.measurements.append(m)
                        say(
                            f"  round {round_no + 1} {name:8} {c.name:16} {m.rps:7.0f} req/s  "
                            f"p50 {m.p50_ms or 0:7.1f} ms  cpu "
                            f"{m.server_cpu_ms_per_request or 0:6.2f} ms/req  "
                            f"failed {m.requests - m.ok}"
                        )
            if plan.soak > 0:
                if "sdk" in paths:
                    sdk_calls = [calls[("sdk", c.name)] for c in plan.cases]
                    say(f"  soak: {plan.soak} requests to the SDK proxy")
                    result.soak = bench.soak(loadgen, paths["sdk"], sdk_calls, everyone)
                else:
                    result.notes.append("--soak skipped: the sdk path was not measured")
    result.targets = check_targets(result.summaries(), result.cases, result.soak, rate=plan.rate)
    _add_notes(result)
    write_results(result, folder)
    return result, folder


def _measurement(
    path: BenchPath,
    case: BenchCase,
    round_no: int,
    requests: int,
    outcome: LoadOutcome,
    before: dict[str, GroupSnapshot],
    after: dict[str, GroupSnapshot],
) -> Measurement:
    latencies, ttft = sorted(outcome.latencies_ms), sorted(outcome.ttft_ms)
    return Measurement(
        path=path.name,
        case=case.name,
        round=round_no,
        requests=requests,
        ok=outcome.ok,
        failures=outcome.failures,
        wall_seconds=outcome.wall_seconds,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        ttft_p50_ms=percentile(ttft, 0.50),
        ttft_p95_ms=percentile(ttft, 0.95),
        server_cpu_seconds={role: after[role].cpu_since(before[role]) for role in after},
        client_cpu_seconds=outcome.client_cpu_seconds,
        peak_rss_bytes=sum(s.peak_rss_bytes for s in after.values()),
    )


def _turn_metrics_off(config_path: Path) -> None:
    """Set ``memory_proxy.metrics: false`` in the proxies' config."""
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data.setdefault("memory_proxy", {})["metrics"] = False
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _total_cpu(leaders: Sequence[int]) -> float:
    return sum(snapshot(pid).cpu_seconds for pid in leaders)


def _mirror_stats(path: BenchPath) -> dict[str, int]:
    """The shadow process's mirror counters (empty for other paths, or unreadable)."""
    if not path.side:
        return {}
    try:
        stats = httpx.get(path.url + "/_shadow/stats", timeout=5.0, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {k: v for k, v in stats.items() if isinstance(v, int)}


def _mirrored(path: BenchPath) -> int:
    """Mirrors the shadow process has completed so far."""
    return _mirror_stats(path).get("completed", 0)


def _mirror_pending(path: BenchPath) -> int:
    """Mirrors queued or in flight: queued minus every way a queued job ends."""
    stats = _mirror_stats(path)
    if not stats:
        return 0
    ended = sum(stats.get(k, 0) for k in ("completed", "store_rejected", "worker_errors"))
    return max(stats.get("queued", 0) - ended, stats.get("in_flight", 0))


def _brief(outcome: LoadOutcome) -> str:
    failed = sum(outcome.failures.values())
    text = f"{outcome.ok / outcome.wall_seconds if outcome.wall_seconds else 0:.0f} req/s"
    if failed:
        text += f", {failed} failed ({outcome.first_failure})"
    return text


def _machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "litellm": version("litellm"),
        "platform": platform.platform(),
    }


def _serves(path: str, case: BenchCase) -> bool:
    """Whether ``path`` can answer ``case`` (the LiteLLM server cannot answer some)."""
    return case.litellm_server_serves or path not in ("litellm", "legacy")


def _add_notes(result: BenchResult) -> None:
    mirrored = [s for s in result.summaries().values() if s.path == "shadow"]
    if mirrored:
        done = ", ".join(f"{s.case} {s.mirrored}/{s.requests}" for s in mirrored)
        cap = result.settings.get("mirror_rate")
        result.notes.append(
            f"shadow: mirror target (own legacy proxy + LiteLLM server + sandbox) at nice "
            f"{result.settings.get('mirror_nice')}"
            f"{' under SCHED_IDLE' if result.settings.get('mirror_idle') else ''}, "
            "the shadow's mirror sidecar as harness.yaml says"
            + (f", mirror capped at {cap:g} req/s" if cap else "")
            + f"; mirrors completed: {done} (the rest shed by the mirror's rate cap or its "
            "bounded queue). The mirror side's CPU includes finishing those mirrors after the "
            "window."
        )
    failures = [m for m in result.measurements if m.ok < m.requests]
    for m in failures:
        result.notes.append(
            f"{m.path} {m.case} round {m.round + 1}: {m.requests - m.ok} failed {m.failures}"
        )
    busy = [m for m in result.measurements if m.client_cpu_share > 0.8]
    if busy:
        result.notes.append(
            f"the load generator used > 80 % of a core in {len(busy)} window(s): "
            "those throughputs may be the generator's limit"
        )
