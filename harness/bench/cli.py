"""``harness bench``: the command-line face of :func:`harness.bench.runner.run_bench`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from harness.bench.ab import AB_FEATURES, run_ab
from harness.bench.cases import CASES, DEFAULT_CASES, parse_cases
from harness.bench.paths import DEFAULT_PATHS, PATH_NAMES, parse_paths
from harness.bench.render import render_table
from harness.bench.runner import BenchPlan, run_bench
from harness.bench.targets import Targets
from memory_proxy.processes import ProcessStartError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=1000, help="requests per measured round")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (medians reported)")
    parser.add_argument(
        "--warmup", type=int, default=300, help="unmeasured requests per path and case first"
    )
    parser.add_argument(
        "--cases",
        default=",".join(DEFAULT_CASES),
        help=f"comma list of {', '.join(CASES)} (default: all); chat-claude* are OpenAI "
        "format to a Claude model, messages-gpt* Anthropic format to an OpenAI model",
    )
    parser.add_argument(
        "--paths",
        default=",".join(DEFAULT_PATHS),
        help=f"comma list of {', '.join(PATH_NAMES)} (tap: the SDK proxy with shadow mode's "
        "upstream tap recording every request, to set beside sdk; not run unless named)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="N",
        help="then N more requests to the SDK proxy, its RSS growth gated (< 20 MB)",
    )
    parser.add_argument("--out", default="reports/bench", help="results go to OUT/<UTC time>/")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=180.0,
        help="cap on one measured window; requests not sent by then count as failed",
    )
    parser.add_argument(
        "--mirror-nice",
        type=int,
        default=19,
        help="niceness of the shadow's mirror target (its own legacy proxy + LiteLLM server); "
        "0 lets it compete with the primary for CPU",
    )
    parser.add_argument(
        "--mirror-normal",
        action="store_true",
        help="run the mirror's target under the normal scheduler (default: SCHED_IDLE, "
        "as the shadow's own sidecar runs), to see what it costs when it competes",
    )
    parser.add_argument(
        "--mirror-cpus",
        default="",
        help="comma list of CPUs for the shadow's mirror side (sidecar and target); the "
        "shadow primary then runs on the others. Default: no pinning",
    )
    parser.add_argument(
        "--mirror-rate",
        type=float,
        default=0.0,
        help="cap the shadow's mirrored requests per second (shadow.max_rate); "
        "default: as config/harness.yaml says",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace every window at this many requests per second (default: as fast as "
        "the path answers); the shadow targets then compare CPU per request and p50",
    )
    parser.add_argument(
        "--no-metrics",
        action="store_true",
        help="run the proxies with memory_proxy.metrics off (no /metrics, no counting), "
        "to measure what the metrics cost",
    )
    parser.add_argument(
        "--ab",
        choices=AB_FEATURES,
        help="instead of the paths: what one feature adds to the SDK proxy's CPU per request, "
        "measured in-process with and without it in alternating rounds (metrics: "
        "memory_proxy.metrics, target <= 0.03 ms; tap: shadow mode's upstream tap, "
        "<= 0.05 ms); --requests, --rounds, --warmup, --concurrency and --cases apply",
    )
    parser.add_argument(
        "--sandbox-args",
        default="",
        help="extra sandbox flags, quoted, e.g. '--latency-ms 20 --chunk-delay-ms 2'",
    )


def _cpus(text: str) -> tuple[int, ...]:
    cpus = tuple(int(c) for c in text.split(",") if c.strip())
    available = os.cpu_count() or 1
    if any(not 0 <= c < available for c in cpus):
        raise ValueError(f"--mirror-cpus: this machine has CPUs 0-{available - 1}")
    return cpus


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 when every target passed, 1 when one missed, 2 on bad input."""
    if args.ab:
        return _run_ab(args)
    try:
        plan = BenchPlan(
            paths=parse_paths(args.paths),
            cases=parse_cases(args.cases),
            requests=_positive(args.requests, "--requests"),
            concurrency=_positive(args.concurrency, "--concurrency"),
            rounds=_positive(args.rounds, "--rounds"),
            warmup=max(0, args.warmup),
            soak=max(0, args.soak),
            out=Path(args.out),
            max_seconds=args.max_seconds,
            sandbox_args=tuple(shlex.split(args.sandbox_args)),
            mirror_nice=min(max(args.mirror_nice, 0), 19),
            mirror_idle=not args.mirror_normal,
            mirror_cpus=_cpus(args.mirror_cpus),
            mirror_rate=max(0.0, args.mirror_rate),
            rate=max(0.0, args.rate),
            metrics=not args.no_metrics,
        )
    except ValueError as exc:
        print(f"harness bench: {exc}", file=sys.stderr)
        return 2
    try:
        result, folder = run_bench(plan)
    except ProcessStartError as exc:
        print(f"harness bench: a server did not start: {exc}", file=sys.stderr)
        return 2
    for case in result.cases:
        print(f"\n{case}\n{render_table(result, case)}")
    print()
    for check in result.targets:
        measured = "-" if check.measured is None else f"{check.measured:.2f}"
        print(
            f"{check.verdict}  {check.name}: {measured} {check.unit} "
            f"({check.op} {check.limit:g} {check.unit}) {check.detail}".rstrip()
        )
    print(f"\nresults: {folder / 'results.md'}, {folder / 'results.json'}")
    return 0 if all(c.passed for c in result.targets) else 1


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise ValueError(f"{flag} must be >= 1, got {value}")
    return value


def _run_ab(args: argparse.Namespace) -> int:
    try:
        cases = parse_cases(args.cases)
        requests = _positive(args.requests, "--requests")
        rounds = _positive(args.rounds, "--rounds")
        concurrency = _positive(args.concurrency, "--concurrency")
    except ValueError as exc:
        print(f"harness bench: {exc}", file=sys.stderr)
        return 2
    folder = Path(args.out) / time.strftime(f"%Y%m%dT%H%M%SZ-ab-{args.ab}", time.gmtime())
    print(f"harness bench --ab {args.ab}: logs in {folder}")
    try:
        results = run_ab(
            args.ab,
            cases,
            folder=folder,
            requests=requests,
            rounds=rounds,
            warmup=max(0, args.warmup),
            concurrency=concurrency,
        )
    except ProcessStartError as exc:
        print(f"harness bench: a server did not start: {exc}", file=sys.stderr)
        return 2
    targets = Targets()
    limit = targets.metrics_cpu_ms if args.ab == "metrics" else targets.tap_cpu_ms
    missed = [r for r in results if r.added_ms > limit]
    verdict = "MISS" if missed else "PASS"
    print(f"{verdict}: target <= {limit} ms added CPU per request, every case")
    return 1 if missed else 0
