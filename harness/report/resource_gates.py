"""Load and memory: the cutover's load criterion and the RSS growth gate (pure).

Load applies the criterion (50 concurrent users, no failures, p95 under the SLO) to each
proxy's latest qualifying run, read tolerantly from the ``load_runs`` rows (see
:func:`load_summaries`). Memory fits the SDK proxy's RSS against the requests it served
after warm-up (MB per 10,000 requests, with a 95 % interval on the slope) and decides on
that interval, over a minimum number of requests: a few seconds of RSS are never
extrapolated to hours. The legacy proxy's is shown beside it.
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
from harness.stats import slope_interval
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
# the first quarter of the requests served so a warm-up is not mistaken for a leak.
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
    """``(requests served, RSS MB)`` after the first quarter of the requests served."""
    if not series.requests or len(series.requests) != len(series.points):
        return []
    served = [
        (float(n), rss / MIB) for n, (_, rss) in zip(series.requests, series.points, strict=True)
    ]
    cut = served[-1][0] * WARMUP_FRACTION
    return [(n, mb) for n, mb in served if n >= cut]


def memory_summaries(series: Sequence[RssSeries]) -> tuple[MemorySummary, ...]:
    out = []
    for s in series:
        points = s.points
        kept = _after_warmup(s)
        fit = slope_interval(kept)
        per_10k = 10_000.0
        out.append(
            MemorySummary(
                target=s.target,
                run=s.run_name,
                samples=len(kept),
                duration_s=points[-1][0] - points[0][0] if points else 0.0,
                first_mb=points[0][1] / MIB if points else None,
                last_mb=points[-1][1] / MIB if points else None,
                requests=int(kept[-1][0] - kept[0][0]) if kept else None,
                growth_mb_per_10k=fit.slope * per_10k if fit else None,
                growth_low=fit.low * per_10k if fit else None,
                growth_high=fit.high * per_10k if fit else None,
                requests_estimated=s.estimated,
            )
        )
    return tuple(out)


def _longest(summaries: Sequence[MemorySummary], target: str) -> MemorySummary | None:
    found = [s for s in summaries if s.target == target]
    return max(found, key=lambda s: (s.requests or 0, s.samples)) if found else None


def _growth_text(s: MemorySummary) -> str:
    estimated = ", requests spread at a steady rate" if s.requests_estimated else ""
    return (
        f"{s.growth_mb_per_10k:+.2f} MB per 10,000 requests "
        f"(95 % interval {s.growth_low:+.2f} to {s.growth_high:+.2f}) over {s.requests:,} "
        f"requests after warm-up, {s.duration_s:.0f} s ({s.first_mb:.1f} -> "
        f"{s.last_mb:.1f} MB, run {s.run!r}{estimated})"
    )


def _memory_check(
    target: str, s: MemorySummary | None, settings: HarnessSettings
) -> tuple[Check, int]:
    """The target's check and how many more requests it needs. Judged on the interval:
    FAIL when all of it is above the limit, PASS when all of it is at or below."""
    report = settings.report
    limit, least = report.leak_mb_per_10k_requests, report.memory_min_requests
    threshold = f"RSS growth <= {limit:g} MB per 10,000 requests served (after warm-up)"
    if s is None or not s.samples:
        why = "no RSS samples" if s is None else "no request counts with the RSS samples"
        return Check(target, S.INCONCLUSIVE, 0, why, threshold), least
    if s.growth_low is None or s.growth_high is None or s.requests is None:
        measured = f"{s.samples} samples after warm-up, {s.duration_s:.0f} s: too few to fit"
        return Check(target, S.INCONCLUSIVE, s.samples, measured, threshold), least
    measured = _growth_text(s)
    if s.growth_low > limit:
        status, detail = S.FAIL, "growth above the limit"
    elif s.growth_high <= limit:
        status, detail = S.PASS, ""
    else:
        status, detail = S.INCONCLUSIVE, "the interval straddles the limit: more requests"
    needs = 0
    if s.requests < least:
        # A short window decides nothing, however steep: growth while caches and pools
        # fill is not a leak, and seconds say nothing about hours.
        detail = f"{s.requests:,} of {least:,} requests" + (
            ", failing so far" if status is S.FAIL else ""
        )
        status, needs = S.INCONCLUSIVE, least - s.requests
    elif status is S.INCONCLUSIVE:
        needs = least
    return Check(target, status, s.requests, measured, threshold, detail), needs


def memory_gate(summaries: Sequence[MemorySummary], settings: HarnessSettings) -> GateResult:
    checks = []
    needs = 0
    for target in TARGETS:
        check, more = _memory_check(target, _longest(summaries, target), settings)
        if target != "sdk":
            # The proxy that stays is gated; the legacy one is shown beside it.
            check = Check(
                target, S.PASS, check.samples, check.measured, check.threshold, "informational"
            )
            more = 0
        checks.append(check)
        needs += more
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
        sdk.threshold + ", SDK proxy",
        detail,
        needs=needs,
        checks=tuple(checks),
    )
