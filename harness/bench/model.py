"""The bench's results as data: one :class:`Measurement` per (path, case, round), their
medians per (path, case) as :class:`PathCaseSummary`, and the whole :class:`BenchResult`.

Pure: percentiles, medians and ratios are computed here from what the runner measured,
so the gate and the renderers never touch a process or a socket.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "BenchResult",
    "Measurement",
    "PathCaseSummary",
    "PathInfo",
    "SoakResult",
    "TargetCheck",
    "summarize",
]

MB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """One measured window: ``requests`` sent to one path for one case."""

    path: str
    case: str
    round: int
    requests: int
    ok: int
    failures: dict[str, int]
    wall_seconds: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    server_cpu_seconds: dict[str, float]  # role -> CPU seconds in the window
    client_cpu_seconds: float
    peak_rss_bytes: int  # sum over the path's processes of VmHWM, after the window
    # What the path made other processes do (shadow: its mirror sidecar and the mirror
    # target), window and drain together: role -> CPU seconds.
    side_cpu_seconds: dict[str, float] = field(default_factory=dict)
    drain_cpu_seconds: float = 0.0  # the path's own CPU after the window (mirror draining)
    mirrored: int = 0  # shadow: requests the mirror completed for this window

    @property
    def rps(self) -> float:
        return self.ok / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if not self.ok:
            return None
        return sum(self.server_cpu_seconds.values()) * 1000 / self.ok

    @property
    def client_cpu_share(self) -> float:
        """The load generator's CPU as a share of one core over the window."""
        return self.client_cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass(frozen=True)
class PathCaseSummary:
    """The median of every metric over the rounds of one path and case."""

    path: str
    case: str
    rounds: int
    requests: int
    failed: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    server_cpu_ms: float | None
    server_cpu_ms_by_role: dict[str, float]
    client_cpu_share: float
    peak_rss_mb: float
    side_cpu_ms_by_role: dict[str, float]  # per primary request
    drain_cpu_ms: float | None  # per primary request
    mirrored: int


def summarize(measurements: Sequence[Measurement]) -> PathCaseSummary:
    """Medians over rounds of one (path, case); failures are summed, not medianed."""
    if not measurements:
        raise ValueError("no measurements to summarize")
    first = measurements[0]
    by_role = _per_request_by_role([(m.server_cpu_seconds, m.ok) for m in measurements])
    return PathCaseSummary(
        path=first.path,
        case=first.case,
        rounds=len(measurements),
        requests=sum(m.requests for m in measurements),
        failed=sum(m.requests - m.ok for m in measurements),
        rps=_median([m.rps for m in measurements]) or 0.0,
        p50_ms=_median([m.p50_ms for m in measurements]),
        p95_ms=_median([m.p95_ms for m in measurements]),
        p99_ms=_median([m.p99_ms for m in measurements]),
        ttft_p50_ms=_median([m.ttft_p50_ms for m in measurements]),
        ttft_p95_ms=_median([m.ttft_p95_ms for m in measurements]),
        server_cpu_ms=_median([m.server_cpu_ms_per_request for m in measurements]),
        server_cpu_ms_by_role=by_role,
        client_cpu_share=_median([m.client_cpu_share for m in measurements]) or 0.0,
        peak_rss_mb=max(m.peak_rss_bytes for m in measurements) / MB,
        side_cpu_ms_by_role=_per_request_by_role(
            [(m.side_cpu_seconds, m.ok) for m in measurements]
        ),
        drain_cpu_ms=_median(
            [m.drain_cpu_seconds * 1000 / m.ok if m.ok else None for m in measurements]
        )
        if any(m.drain_cpu_seconds for m in measurements)
        else None,
        mirrored=sum(m.mirrored for m in measurements),
    )


def _per_request_by_role(windows: Sequence[tuple[dict[str, float], int]]) -> dict[str, float]:
    """role -> median over windows of CPU ms per successful request."""
    roles = sorted({role for seconds, _ in windows for role in seconds})
    return {
        role: _median([seconds.get(role, 0.0) * 1000 / ok for seconds, ok in windows if ok]) or 0.0
        for role in roles
    }


@dataclass(frozen=True)
class PathInfo:
    name: str
    ready_seconds: float
    startup_seconds: dict[str, float]
    roles: list[str]
    side_roles: list[str]


@dataclass(frozen=True)
class SoakResult:
    requests: int
    ok: int
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    samples_mb: list[float]

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


@dataclass(frozen=True)
class TargetCheck:
    """One target, its measured value and whether it was met."""

    name: str
    measured: float | None
    op: str  # "<=", ">=" or "<"
    limit: float
    unit: str
    passed: bool
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"


@dataclass
class BenchResult:
    started_at: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    paths: list[PathInfo]
    cases: list[str]
    measurements: list[Measurement] = field(default_factory=list)
    soak: SoakResult | None = None
    targets: list[TargetCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summaries(self) -> dict[tuple[str, str], PathCaseSummary]:
        grouped: dict[tuple[str, str], list[Measurement]] = {}
        for m in self.measurements:
            grouped.setdefault((m.path, m.case), []).append(m)
        return {key: summarize(ms) for key, ms in grouped.items()}

    def to_json(self) -> dict[str, Any]:
        summaries = self.summaries()
        return {
            "started_at": self.started_at,
            "settings": self.settings,
            "machine": self.machine,
            "paths": [asdict(p) for p in self.paths],
            "cases": self.cases,
            "summary": [
                {
                    **asdict(s),
                    "ratio_to_direct": ratio(s.rps, summaries.get(("direct", s.case))),
                    "ratio_to_legacy": ratio(s.rps, summaries.get(("legacy", s.case))),
                }
                for s in summaries.values()
            ],
            "measurements": [
                {
                    **asdict(m),
                    "rps": m.rps,
                    "server_cpu_ms_per_request": m.server_cpu_ms_per_request,
                }
                for m in self.measurements
            ],
            "soak": None
            if self.soak is None
            else {**asdict(self.soak), "growth_mb": self.soak.growth_mb},
            "targets": [{**asdict(t), "verdict": t.verdict} for t in self.targets],
            "notes": self.notes,
        }


def ratio(rps: float, baseline: PathCaseSummary | None) -> float | None:
    """``rps`` over the baseline's throughput (None without a baseline)."""
    if baseline is None or baseline.rps <= 0:
        return None
    return rps / baseline.rps
