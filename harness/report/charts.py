"""The report's charts as data: latency CDFs, TTFT distributions, RSS over time (pure).

Charts hold at most a few hundred points whatever the number of pairs, so renderers
and the JSON stay small.
"""

from __future__ import annotations

from harness.report.checks import TARGETS
from harness.report.latency_gates import slice_order
from harness.report.model import Chart, Series
from harness.report.resource_gates import MIB
from harness.report.tally import Evidence, RssSeries
from harness.stats import cdf_points, histogram, percentile

__all__ = ["RSS_POINTS", "build_charts", "slice_slug"]

RSS_POINTS = 240
TTFT_BINS = 20


def slice_slug(endpoint: str, stream: bool) -> str:
    return f"{endpoint}-{'stream' if stream else 'nonstream'}"


def _label(endpoint: str, stream: bool) -> str:
    return f"{endpoint} {'stream' if stream else 'non-stream'}"


def _downsample(points: list[tuple[float, float]], limit: int) -> tuple[tuple[float, float], ...]:
    if len(points) <= limit:
        return tuple(points)
    step = (len(points) - 1) / (limit - 1)
    return tuple(points[round(i * step)] for i in range(limit))


def _rss_series(series: RssSeries) -> Series:
    points = [(t, rss / MIB) for t, rss in series.points if rss is not None]
    return Series(f"{series.target} ({series.run_name})", _downsample(points, RSS_POINTS))


def build_charts(evidence: Evidence) -> tuple[Chart, ...]:
    charts = []
    for endpoint, stream in sorted(evidence.latency, key=slice_order):
        data = evidence.latency[(endpoint, stream)]
        slug = slice_slug(endpoint, stream)
        series = tuple(
            Series(t, cdf_points(sorted(data.total[t]))) for t in TARGETS if data.total.get(t)
        )
        if series:
            charts.append(
                Chart(
                    f"latency-{slug}",
                    "cdf",
                    f"Latency CDF: {_label(endpoint, stream)}",
                    "total ms",
                    "fraction of requests",
                    series,
                )
            )
        ttft = {t: sorted(data.ttft[t]) for t in TARGETS if data.ttft.get(t)}
        if stream and ttft:
            low = min(values[0] for values in ttft.values())
            high = max(percentile(values, 0.99) or 0.0 for values in ttft.values())
            charts.append(
                Chart(
                    f"ttft-{slug}",
                    "histogram",
                    f"Time to first token: {_label(endpoint, stream)}",
                    "TTFT ms",
                    "fraction of streams",
                    tuple(
                        Series(t, histogram(values, low, high, TTFT_BINS))
                        for t, values in ttft.items()
                    ),
                )
            )
    rss = [s for s in evidence.rss if any(rss is not None for _, rss in s.points)]
    if rss:
        charts.append(
            Chart(
                "rss",
                "timeseries",
                "Resident memory over time",
                "seconds since the run started",
                "RSS MB",
                tuple(_rss_series(s) for s in rss),
            )
        )
    return tuple(charts)
