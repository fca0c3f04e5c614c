"""Latency: SDK vs legacy per endpoint x stream, summaries and gates (pure).

Both proxies' answers to the same requests are compared: the SDK passes when its p50 /
p95 (and a stream's TTFT p50) stay within the configured ratios of the legacy proxy's.
The bootstrap intervals of the differences are shown beside them, not gated on.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.checks import RATIO_SLACK, TARGETS, combine
from harness.report.formatting import interval_text, ms
from harness.report.model import Check, GateResult, LatencySummary
from harness.report.model import Status as S
from harness.report.tally import Evidence
from harness.settings import HarnessSettings
from harness.stats import BOOTSTRAP_SEED, bootstrap_quantile_difference, percentile

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
        intervals: dict[str, tuple[float, float] | None] = {
            "p50": bootstrap_quantile_difference(total["sdk"], total["legacy"], 0.5, seed=seed),
            "p95": bootstrap_quantile_difference(total["sdk"], total["legacy"], 0.95, seed=seed),
        }
        if data.stream:
            intervals["ttft_p50"] = bootstrap_quantile_difference(
                ttft["sdk"], ttft["legacy"], 0.5, seed=seed
            )
        out.append(
            LatencySummary(
                endpoint=data.endpoint,
                stream=data.stream,
                samples={t: len(total[t]) for t in TARGETS},
                total={
                    t: {f"p{q}": percentile(total[t], q / 100) for q in (50, 95, 99)}
                    for t in TARGETS
                },
                ttft={t: {f"p{q}": percentile(ttft[t], q / 100) for q in (50, 95)} for t in TARGETS}
                if data.stream
                else {},
                ttft_samples={t: len(ttft[t]) for t in TARGETS} if data.stream else {},
                intervals=intervals,
            )
        )
    return tuple(out)


def _ratio_check(
    name: str,
    sdk: float | None,
    legacy: float | None,
    ratio: float,
    samples: int,
    interval: tuple[float, float] | None,
    min_samples: int,
) -> Check:
    threshold = f"SDK <= legacy x {ratio:.2f}"
    if sdk is None or legacy is None:
        return Check(name, S.INCONCLUSIVE, samples, "no samples on one side", threshold)
    measured = f"SDK {ms(sdk)} vs legacy {ms(legacy)}"
    if legacy > 0:
        measured += f" (x{sdk / legacy:.2f})"
    if interval is not None:
        measured += f"; diff 95 % CI {interval_text(interval)} ms"
    status = S.PASS if sdk <= legacy * ratio * (1 + RATIO_SLACK) else S.FAIL
    detail = ""
    if samples < min_samples:
        detail = "failing so far" if status is S.FAIL else ""
        status = S.INCONCLUSIVE
    return Check(name, status, samples, measured, threshold, detail)


def latency_gates(
    summaries: Sequence[LatencySummary], settings: HarnessSettings
) -> list[GateResult]:
    report = settings.report
    min_samples = report.min_samples
    if not summaries:
        return [
            GateResult(
                "latency",
                S.INCONCLUSIVE,
                0,
                {},
                "SDK within the configured ratios of legacy",
                "no successful exchanges with timings",
                needs=min_samples,
            )
        ]
    gates = []
    for s in summaries:
        samples = min(s.samples.values())
        checks = [
            _ratio_check(
                f"p{q}",
                s.total["sdk"][f"p{q}"],
                s.total["legacy"][f"p{q}"],
                ratio,
                samples,
                s.intervals.get(f"p{q}"),
                min_samples,
            )
            for q, ratio in ((50, report.latency_p50_ratio), (95, report.latency_p95_ratio))
        ]
        needs = max(0, min_samples - samples)
        if s.stream:
            ttft_samples = min(s.ttft_samples.get(t, 0) for t in TARGETS)
            checks.append(
                _ratio_check(
                    "TTFT p50",
                    s.ttft["sdk"]["p50"],
                    s.ttft["legacy"]["p50"],
                    report.ttft_p50_ratio,
                    ttft_samples,
                    s.intervals.get("ttft_p50"),
                    min_samples,
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
                f"SDK p50 <= legacy x {report.latency_p50_ratio:.2f}, p95 <= x "
                f"{report.latency_p95_ratio:.2f}"
                + (f", TTFT p50 <= x {report.ttft_p50_ratio:.2f}" if s.stream else "")
                + f"; >= {min_samples} samples per side",
                detail,
                needs=needs,
                checks=tuple(checks),
            )
        )
    return gates
