"""Latency: SDK vs legacy per endpoint x stream, summaries and gates (pure).

Each check is decided on a 95 % interval of the difference, SDK minus legacy, against the
slowdown the settings allow: ``legacy quantile x (ratio - 1)``, e.g. 10 % of legacy's
p50, and never less than ``report.latency_min_allowance_ms`` (10 % of a 3 ms endpoint is
below what the timing resolves). The interval: for p50 and TTFT p50 of a slice timed
alike (the latency twin and the mirror, sent at the same moment:
:mod:`harness.shadow.engine`), the sign-test interval of the median per-pair difference
(:func:`harness.stats.median_interval`), and for p95 a bootstrap of the quantiles'
difference that resamples whole pairs
(:func:`harness.stats.paired_bootstrap_quantile_difference`); otherwise a bootstrap of
the difference of the two quantiles, each side resampled apart
(:func:`harness.stats.bootstrap_quantile_difference`).

* FAIL: the interval's lower bound is above the allowance (the SDK is slower than allowed,
  with 95 % confidence);
* PASS: its upper bound is within the allowance (the SDK is, with the same confidence,
  no slower than allowed);
* INCONCLUSIVE: the interval straddles the allowance, or the slice has too few samples
  (``report.min_samples``; for p95 ``report.latency_p95_min_samples``: a p95 from a few
  dozen values is its largest one or two, and a single slow outlier on either side would
  decide it).

A raw ratio of two quantiles never decides: from a few dozen samples it moves by tens of
percent between two runs of the same build, in either direction. The ratio is shown.

Sample counts are every timing the store holds; percentiles and intervals are taken over
each side's :class:`~harness.report.reservoir.Reservoir`: every timing up to its size, a
uniform sample beyond (a team's million pairs), whose intervals are then a little wider
than the full lists would give: cautious, never bolder.
How the timings are taken (the same way on both sides) is :mod:`harness.report.collect`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.checks import RATIO_SLACK, TARGETS, combine
from harness.report.formatting import interval_text, ms
from harness.report.model import Check, GateResult, LatencySummary
from harness.report.model import Status as S
from harness.report.reservoir import Reservoir
from harness.report.tally import Evidence
from harness.settings import HarnessSettings
from harness.stats import (
    BOOTSTRAP_SEED,
    bootstrap_quantile_difference,
    median_interval,
    paired_bootstrap_quantile_difference,
    percentile,
)

__all__ = ["latency_gates", "latency_summaries", "slice_order"]

_ENDPOINT_ORDER = ("chat", "messages", "count_tokens", "models", "health")


def slice_order(key: tuple[str, bool]) -> tuple[int, str, bool]:
    """Endpoint x stream slices in report order: the known endpoints first."""
    endpoint, stream = key
    rank = _ENDPOINT_ORDER.index(endpoint) if endpoint in _ENDPOINT_ORDER else 99
    return rank, endpoint, stream


def latency_summaries(evidence: Evidence, seed: int = BOOTSTRAP_SEED) -> tuple[LatencySummary, ...]:
    out = []
    for key in sorted(evidence.latency, key=slice_order):
        data = evidence.latency[key]
        total = {t: sorted(data.total.get(t, ())) for t in TARGETS}
        ttft = {t: sorted(data.ttft.get(t, ())) for t in TARGETS}
        # Counts are every timing seen; percentiles and intervals come from the kept
        # sample (all of them up to the reservoir's size, a uniform sample beyond).
        seen = {t: _seen(data.total, t) for t in TARGETS}
        ttft_seen = {t: _seen(data.ttft, t) for t in TARGETS}
        intervals: dict[str, tuple[float, float] | None] = {
            "p50": _p50_interval(total, seen, data.paired_total, seed),
            "p95": _p95_interval(total, seen, data.paired_sides, seed),
        }
        if data.stream:
            intervals["ttft_p50"] = _p50_interval(ttft, ttft_seen, data.paired_ttft, seed)
        out.append(
            LatencySummary(
                endpoint=data.endpoint,
                stream=data.stream,
                samples=seen,
                total={
                    t: {f"p{q}": percentile(total[t], q / 100) for q in (50, 95, 99)}
                    for t in TARGETS
                },
                ttft={t: {f"p{q}": percentile(ttft[t], q / 100) for q in (50, 95)} for t in TARGETS}
                if data.stream
                else {},
                ttft_samples=ttft_seen if data.stream else {},
                intervals=intervals,
            )
        )
    return tuple(out)


def _seen(sides: dict[str, Reservoir], target: str) -> int:
    found = sides.get(target)
    return found.seen if found is not None else 0


def _p50_interval(
    sides: dict[str, list[float]], seen: dict[str, int], paired: Reservoir, seed: int
) -> tuple[float, float] | None:
    """The p50 difference's interval. A slice whose every sample was timed alike (both
    sides at the same moment) gets the sign-test interval of the median per-pair
    difference: load common to both sides cancels in each difference, so a small shift
    shows through noise that swamps the two medians. Else a bootstrap of the difference
    of the two medians, which ignores the pairing and errs wide."""
    if paired.seen and paired.seen == min(seen["sdk"], seen["legacy"]):
        interval = median_interval(sorted(paired))
        if interval is not None:
            return interval
    return bootstrap_quantile_difference(sides["sdk"], sides["legacy"], 0.5, seed=seed)


def _p95_interval(
    sides: dict[str, list[float]],
    seen: dict[str, int],
    paired: Reservoir[tuple[float, float]],
    seed: int,
) -> tuple[float, float] | None:
    """The p95 difference's interval: of pairs resampled whole where every sample was
    timed alike (a stall common to both sides of a pair then cancels: /health at 111
    pairs, the same build on both sides, read [-5.7, +3.7] ms resampled side by side),
    else of the two sides resampled apart."""
    if paired.seen and paired.seen == min(seen["sdk"], seen["legacy"]):
        return paired_bootstrap_quantile_difference(list(paired), 0.95, seed=seed)
    return bootstrap_quantile_difference(sides["sdk"], sides["legacy"], 0.95, seed=seed)


def _interval_check(
    name: str,
    sdk: float | None,
    legacy: float | None,
    ratio: float,
    samples: int,
    interval: tuple[float, float] | None,
    min_samples: int,
    floor_ms: float,
) -> Check:
    threshold = f"SDK - legacy <= legacy x {ratio - 1:.2f}, at least {floor_ms:g} ms (95 % CI)"
    if sdk is None or legacy is None or interval is None:
        return Check(name, S.INCONCLUSIVE, samples, "no samples on one side", threshold)
    allowed = max(legacy * (ratio - 1), floor_ms) + RATIO_SLACK * max(1.0, abs(legacy))
    low, high = interval
    measured = f"SDK {ms(sdk)} vs legacy {ms(legacy)}"
    if legacy > 0:
        measured += f" (x{sdk / legacy:.2f})"
    measured += f"; diff 95 % CI {interval_text(interval)} ms, allowed +{allowed:.1f} ms"
    if low > allowed:
        status, detail = S.FAIL, ""
    elif high <= allowed:
        status, detail = S.PASS, ""
    else:
        status, detail = S.INCONCLUSIVE, "the interval straddles the allowance"
    if samples < min_samples:
        detail = "failing so far" if status is S.FAIL else ""
        status = S.INCONCLUSIVE
    return Check(name, status, samples, measured, threshold, detail)


def latency_gates(
    summaries: Sequence[LatencySummary], settings: HarnessSettings
) -> list[GateResult]:
    report = settings.report
    min_samples = report.min_samples
    p95_min_samples = max(min_samples, report.latency_p95_min_samples)
    if not summaries:
        return [
            GateResult(
                "latency",
                S.INCONCLUSIVE,
                0,
                {},
                "SDK - legacy within the allowed slowdown (95 % CI)",
                "no successful exchanges with timings",
                needs=min_samples,
            )
        ]
    gates = []
    for s in summaries:
        samples = min(s.samples.values())
        checks = [
            _interval_check(
                f"p{q}",
                s.total["sdk"][f"p{q}"],
                s.total["legacy"][f"p{q}"],
                ratio,
                samples,
                s.intervals.get(f"p{q}"),
                least,
                report.latency_min_allowance_ms,
            )
            for q, ratio, least in (
                (50, report.latency_p50_ratio, min_samples),
                (95, report.latency_p95_ratio, p95_min_samples),
            )
        ]
        needs = max(0, min_samples - samples, p95_min_samples - samples)
        if s.stream:
            ttft_samples = min(s.ttft_samples.get(t, 0) for t in TARGETS)
            checks.append(
                _interval_check(
                    "TTFT p50",
                    s.ttft["sdk"]["p50"],
                    s.ttft["legacy"]["p50"],
                    report.ttft_p50_ratio,
                    ttft_samples,
                    s.intervals.get("ttft_p50"),
                    min_samples,
                    report.latency_min_allowance_ms,
                )
            )
        checks.append(
            Check(
                "p99",
                S.PASS,
                samples,
                f"SDK {ms(s.total['sdk']['p99'])} vs legacy {ms(s.total['legacy']['p99'])}",
                "informational",
            )
        )
        status = combine(checks)
        failing = [f"{c.name} {c.measured}" for c in checks if c.status is S.FAIL]
        so_far = [f"{c.name} {c.measured}" for c in checks if c.detail == "failing so far"]
        detail = "; ".join(failing) or ("failing so far: " + "; ".join(so_far) if so_far else "")
        gates.append(
            GateResult(
                f"latency: {s.label}",
                status,
                samples,
                {
                    "samples": dict(s.samples),
                    "total_ms": {t: dict(v) for t, v in s.total.items()},
                    "ttft_ms": {t: dict(v) for t, v in s.ttft.items()},
                    "diff_ci_ms": {k: list(v) if v else None for k, v in s.intervals.items()},
                },
                f"95 % CI of SDK - legacy within legacy x {report.latency_p50_ratio - 1:.2f} "
                f"(p50), x {report.latency_p95_ratio - 1:.2f} (p95)"
                + (f", x {report.ttft_p50_ratio - 1:.2f} (TTFT p50)" if s.stream else "")
                + f"; >= {min_samples} samples per side ({p95_min_samples} for p95)",
                detail,
                needs=needs,
                checks=tuple(checks),
            )
        )
    return gates
