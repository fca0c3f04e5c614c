"""Small evidence for the gate tests, built field by field (no store, no comparator)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.report.cookie_tally import CookieTally
from harness.report.model import GateResult
from harness.report.reservoir import Reservoir
from harness.report.tally import (
    DiffTally,
    Evidence,
    LatencySlice,
    LoadRun,
    ProviderCallTally,
    RoutingTally,
    RssSeries,
    RunInfo,
    UpstreamCall,
)
from harness.settings import HarnessSettings

__all__ = [
    "FAMILIES",
    "RUN",
    "clean_evidence",
    "gate",
    "load_run",
    "rss",
    "tally",
]

RUN = RunInfo(1_767_312_000.0, "0.1.0", "1.106.12", "config/config.yaml", "ab" * 32, "s.db")
FAMILIES = HarnessSettings().report.families
ENDPOINTS = ("chat", "messages", "count_tokens", "models", "health")
MIB = 1024 * 1024


def tally(compared: int, **categories: int) -> DiffTally:
    return DiffTally(compared=compared, categories=Counter(categories))


def load_run(run_id: int = 1, users: int = 50, **per_target: dict[str, Any]) -> LoadRun:
    results = {
        target: {"users": users, "requests": 1000, "failures": 0, "p95_ms": 400.0}
        | per_target.get(target, {})
        for target in ("sdk", "legacy")
    }
    return LoadRun(run_id, f"run-{run_id}", None, 0.0, 600.0, {"users": users}, results)


def _rss(target: str, mb_per_10k: float, samples: int = 41) -> RssSeries:
    # one sample a second, 250 requests served between samples: 41 samples are 10,000
    # requests, 7,500 of them after warm-up
    points = tuple((float(i), int(150 * MIB + mb_per_10k * i / 40 * MIB)) for i in range(samples))
    return RssSeries(target, 1, "run-1", points, tuple(250 * i for i in range(samples)))


def clean_evidence(n: int = 40) -> Evidence:
    """Evidence on which every gate passes with ``n`` samples everywhere."""
    e = Evidence(RUN, pairs=n * len(ENDPOINTS))
    for endpoint in ENDPOINTS:
        e.endpoint_pairs[endpoint] = n
        e.diffs[endpoint] = tally(n)
        e.noise[endpoint] = tally(n)
    e.stream_diffs = tally(n)
    e.stream_noise = tally(n)
    e.stream_endings.streams = n
    e.error_diffs = tally(n, error_message=n)
    e.error_noise = tally(n)
    for family in FAMILIES:
        e.families[family] = tally(n)
        e.family_pairs[family] = n
        e.routing[family] = RoutingTally(compared=n)
    e.upstream_calls["sdk"] = CookieTally.of(
        [UpstreamCall(i, float(i), float(i) + 0.5, i == 0, i > 0, f"req-{i}") for i in range(n + 1)]
    )
    e.provider_calls = ProviderCallTally(counted=n, parity_compared=n)
    # p95 decides only from report.latency_p95_min_samples (50) per side.
    timed = max(n, 50)
    for endpoint, stream in (("chat", False), ("chat", True)):
        e.latency[(endpoint, stream)] = LatencySlice(
            endpoint,
            stream,
            total={"sdk": Reservoir([100.0] * timed), "legacy": Reservoir([100.0] * timed)},
            ttft={"sdk": Reservoir([30.0] * timed), "legacy": Reservoir([30.0] * timed)}
            if stream
            else {},
        )
    e.load_runs = (load_run(),)
    e.rss = (_rss("sdk", 5.0), _rss("legacy", 5.0))
    return e


def rss(target: str, mb_per_10k: float, samples: int = 41) -> RssSeries:
    """RSS growing ``mb_per_10k`` MB per 10,000 requests served, exactly."""
    return _rss(target, mb_per_10k, samples)


def gate(gates: tuple[GateResult, ...], name: str) -> GateResult:
    found = [g for g in gates if g.name == name]
    assert found, f"no gate {name!r} in {[g.name for g in gates]}"
    return found[0]
