"""Load and memory: the cutover's load criterion and the RSS growth gate (pure).

Load applies the criterion (50 concurrent users, no failures, p95 under the SLO) to each
proxy's latest qualifying run, read tolerantly from the ``load_runs`` rows (see
:func:`load_summaries`). Memory fits the SDK proxy's RSS growth after warm-up; the
legacy proxy's is shown beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.checks import RATIO_SLACK, TARGETS, combine
from harness.report.formatting import ms
from harness.report.model import Check, GateResult, LoadSummary, MemorySummary
from harness.report.model import Status as S
from harness.report.tally import RssSeries
from harness.settings import HarnessSettings
from harness.stats import least_squares_slope
from harness.store.capture_store import LoadRun

__all__ = [
    "LOAD_KEYS",
    "LOAD_USERS",
    "MIB",
    "WARMUP_FRACTION",
    "load_gate",
    "load_summaries",
    "memory_gate",
    "memory_summaries",
]

LOAD_USERS = 50  # the cutover criterion: 50 concurrent users
# What a load run's results are read for, per target.
LOAD_KEYS = (
    "users",
    "requests",
    "failures",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "slo_passed",
)
MIB = 1024 * 1024
# RSS climbs while imports, caches and connection pools fill: the slope is fitted after
# the first quarter of a run so a warm-up is not mistaken for a leak.
WARMUP_FRACTION = 0.25


def _pick(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    return None if isinstance(value, dict | list) else value


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _flat(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """`harness load` nests its figures (``requests: {count, failures, rps, p50_ms, ...}``,
    ``ttft: {p50_ms, p95_ms}``, ``status``); read them as the flat keys above."""
    requests = data.get("requests")
    if not isinstance(requests, dict):
        return data
    ttft_raw = data.get("ttft")
    ttft: Mapping[str, Any] = ttft_raw if isinstance(ttft_raw, dict) else {}
    flat = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    flat.update(
        requests=requests.get("count"),
        failures=requests.get("failures"),
        rps=requests.get("rps"),
        p50_ms=requests.get("p50_ms"),
        p95_ms=requests.get("p95_ms"),
        p99_ms=requests.get("p99_ms"),
        ttft_p50_ms=ttft.get("p50_ms"),
        ttft_p95_ms=ttft.get("p95_ms"),
    )
    if "slo_passed" not in data and isinstance(data.get("status"), str):
        flat["slo_passed"] = data["status"] == "ok"
    return flat


def load_summaries(runs: Sequence[LoadRun]) -> tuple[LoadSummary, ...]:
    """One summary per run and target, in run order.

    A run's results are read per target from ``results[target]`` or
    ``results["targets"][target]``; a row whose ``target`` column names one proxy may
    hold that proxy's numbers flat in ``results``. ``users`` falls back to the run's
    ``results["users"]`` and ``params["users"]``. Missing or non-numeric keys read as None.
    """
    out = []
    for run in runs:
        results = run.results if isinstance(run.results, dict) else {}
        nested = results.get("targets")
        per_target: dict[str, Any] = {}
        if isinstance(nested, dict):
            per_target = {t: v for t, v in nested.items() if isinstance(v, dict)}
        else:
            per_target = {t: results[t] for t in TARGETS if isinstance(results.get(t), dict)}
        if not per_target and run.target:
            per_target = {run.target: results}
        for target, raw in per_target.items():
            data = _flat(raw)
            users = _int(_pick(data, "users"))
            if users is None:
                users = _int(_pick(results, "users"))
            if users is None and isinstance(run.params, dict):
                users = _int(run.params.get("users"))
            slo = _pick(data, "slo_passed")
            out.append(
                LoadSummary(
                    target=str(target),
                    run=run.name,
                    users=users,
                    requests=_int(_pick(data, "requests")),
                    failures=_int(_pick(data, "failures")),
                    rps=_float(_pick(data, "rps")),
                    p50_ms=_float(_pick(data, "p50_ms")),
                    p95_ms=_float(_pick(data, "p95_ms")),
                    p99_ms=_float(_pick(data, "p99_ms")),
                    ttft_p50_ms=_float(_pick(data, "ttft_p50_ms")),
                    ttft_p95_ms=_float(_pick(data, "ttft_p95_ms")),
                    slo_passed=slo if isinstance(slo, bool) else None,
                )
            )
    return tuple(out)


def _load_check(
    target: str, summaries: Sequence[LoadSummary], settings: HarnessSettings
) -> tuple[Check, int]:
    min_samples = settings.report.min_samples
    slo = settings.load
    threshold = (
        f"{LOAD_USERS} users, failures <= {slo.max_failure_ratio:.1%} of requests, "
        f"p95 <= {slo.p95_ms:.0f} ms"
    )
    runs = [s for s in summaries if s.target == target]
    qualifying = [s for s in runs if s.users is not None and s.users >= LOAD_USERS]
    if not qualifying:
        if runs:
            users = runs[-1].users
            why = f"latest run {runs[-1].run!r} had {users if users is not None else '?'} users"
        else:
            why = "no load run"
        return Check(target, S.INCONCLUSIVE, 0, "-", threshold, why), min_samples
    s = qualifying[-1]
    requests = s.requests or 0
    if s.failures is None or s.p95_ms is None or not requests:
        missing = [k for k in ("requests", "failures", "p95_ms") if getattr(s, k) is None]
        why = f"run {s.run!r} lacks {', '.join(missing) or 'requests'}"
        return Check(target, S.INCONCLUSIVE, requests, "-", threshold, why), min_samples
    ratio = s.failures / requests
    status = S.PASS
    if ratio > slo.max_failure_ratio + RATIO_SLACK or s.p95_ms > slo.p95_ms:
        status = S.FAIL
    measured = (
        f"run {s.run!r}: {s.users} users, {s.failures} failures of {requests} requests, "
        f"p95 {ms(s.p95_ms)}"
    )
    detail = ""
    if requests < min_samples:
        detail = "failing so far" if status is S.FAIL else ""
        status = S.INCONCLUSIVE
    return Check(target, status, requests, measured, threshold, detail), max(
        0, min_samples - requests
    )


def load_gate(summaries: Sequence[LoadSummary], settings: HarnessSettings) -> GateResult:
    # Both proxies are measured; the SDK proxy is the one being accepted, so only its
    # check decides. A legacy stack that misses the criterion is context, not a blocker.
    results = [_load_check(t, summaries, settings) for t in TARGETS]
    checks = tuple(c for c, _ in results)
    sdk = [c for c in checks if c.name == "sdk"]
    status = combine(tuple(sdk)) if sdk else combine(checks)
    detail = "; ".join(
        f"{c.name}{'' if c.name == 'sdk' else ' (shown, not gated)'}: {c.detail or c.measured}"
        for c in checks
        if c.status is not S.PASS
    )
    return GateResult(
        f"load: {LOAD_USERS} concurrent users",
        status,
        sum(c.samples for c in checks),
        {c.name: c.measured for c in checks},
        checks[0].threshold + ", for the SDK proxy (legacy measured alongside)",
        detail,
        needs=sum(n for _, n in results),
        checks=checks,
    )


def _after_warmup(series: RssSeries) -> list[tuple[float, float]]:
    points = [(t, rss) for t, rss in series.points if rss is not None]
    if not points:
        return []
    start, end = points[0][0], points[-1][0]
    cut = start + (end - start) * WARMUP_FRACTION
    return [(t / 3600, rss / MIB) for t, rss in points if t >= cut]


def memory_summaries(series: Sequence[RssSeries]) -> tuple[MemorySummary, ...]:
    out = []
    for s in series:
        points = [(t, rss) for t, rss in s.points if rss is not None]
        kept = _after_warmup(s)
        out.append(
            MemorySummary(
                target=s.target,
                run=s.run_name,
                samples=len(kept),
                duration_s=points[-1][0] - points[0][0] if points else 0.0,
                first_mb=points[0][1] / MIB if points else None,
                last_mb=points[-1][1] / MIB if points else None,
                slope_mb_per_hour=least_squares_slope(kept),
            )
        )
    return tuple(out)


def _longest(summaries: Sequence[MemorySummary], target: str) -> MemorySummary | None:
    found = [s for s in summaries if s.target == target]
    return max(found, key=lambda s: (s.duration_s, s.samples)) if found else None


def memory_gate(summaries: Sequence[MemorySummary], settings: HarnessSettings) -> GateResult:
    min_samples = settings.report.min_samples
    limit = settings.report.leak_mb_per_hour
    threshold = f"RSS growth <= {limit:g} MB/hour (after warm-up)"
    checks = []
    needs = 0
    for target in TARGETS:
        s = _longest(summaries, target)
        gated = target == "sdk"  # the proxy that stays; the legacy one is shown beside it
        if s is None or s.slope_mb_per_hour is None:
            status = S.INCONCLUSIVE if gated else S.PASS
            needs += min_samples if gated else 0
            checks.append(Check(target, status, 0, "no RSS samples", threshold))
            continue
        slope = s.slope_mb_per_hour
        measured = (
            f"{slope:+.1f} MB/hour over {s.duration_s:.0f} s "
            f"({s.first_mb:.1f} -> {s.last_mb:.1f} MB, run {s.run!r})"
        )
        status = S.FAIL if slope > limit + RATIO_SLACK else S.PASS
        detail = ""
        if not gated:
            status, detail = S.PASS, "informational"
        elif s.samples < min_samples:
            detail = "failing so far" if status is S.FAIL else ""
            status = S.INCONCLUSIVE
            needs += min_samples - s.samples
        checks.append(Check(target, status, s.samples, measured, threshold, detail))
    status = combine(checks)
    sdk = checks[0]
    detail = ""
    if status is not S.PASS:
        detail = f"sdk: {sdk.measured}" + (f" ({sdk.detail})" if sdk.detail else "")
    return GateResult(
        "memory: RSS growth",
        status,
        sdk.samples,
        {c.name: c.measured for c in checks},
        threshold + ", SDK proxy",
        detail,
        needs=needs,
        checks=tuple(checks),
    )
