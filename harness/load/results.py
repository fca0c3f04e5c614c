"""One load run's results per target, as stored and as the side-by-side table shows them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store.capture_store import ProcessSample

__all__ = ["TargetResult", "format_table"]

_MB = 1024 * 1024


@dataclass
class TargetResult:
    """What one target did under load; ``status`` is ok, slo-missed, down, interrupted, error."""

    name: str
    url: str
    status: str
    reason: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    exit_code: int | None = None
    summary: dict[str, Any] | None = None
    samples: list[ProcessSample] = field(default_factory=list)
    out_dir: Path | None = None
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def requests(self) -> dict[str, Any]:
        return (self.summary or {}).get("requests") or {}

    def ttft(self) -> dict[str, Any]:
        return (self.summary or {}).get("ttft") or {}

    def rss_mb(self) -> tuple[float | None, float | None]:
        values = [s.rss_bytes for s in self.samples if s.rss_bytes is not None]
        if not values:
            return None, None
        return values[0] / _MB, values[-1] / _MB

    def cpu_ms_per_request(self) -> float | None:
        cpu = [s.cpu_seconds for s in self.samples if s.cpu_seconds is not None]
        count = self.requests().get("count") or 0
        if len(cpu) < 2 or not count:
            return None
        return (cpu[-1] - cpu[0]) * 1000 / count

    def process_figures(self) -> dict[str, Any]:
        rss_start, rss_end = self.rss_mb()
        return {
            "pid": self.pid,
            "samples": len(self.samples),
            "rss_start_mb": rss_start,
            "rss_end_mb": rss_end,
            "rss_peak_mb": max(
                (s.rss_bytes / _MB for s in self.samples if s.rss_bytes is not None),
                default=None,
            ),
            "cpu_ms_per_request": self.cpu_ms_per_request(),
        }

    def results(self) -> dict[str, Any]:
        """What the store keeps for this target: Locust's summary plus the verdict."""
        return {
            **(self.summary or {}),
            "status": self.status,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "process": self.process_figures(),
            "files": _files(self.out_dir),
        }


def _files(out_dir: Path | None) -> dict[str, str]:
    if out_dir is None or not out_dir.is_dir():
        return {}
    return {p.name: str(p) for p in sorted(out_dir.iterdir())}


def format_table(results: Sequence[TargetResult]) -> str:
    """Targets side by side, one metric a row."""

    rows: list[tuple[str, Callable[[TargetResult], str]]] = [
        ("status", lambda r: r.status),
        ("requests", lambda r: _int(r.requests().get("count"))),
        ("req/s", lambda r: _num(r.requests().get("rps"), 1)),
        ("failures", _failures),
        ("p50 ms", lambda r: _num(r.requests().get("p50_ms"), 0)),
        ("p95 ms", lambda r: _num(r.requests().get("p95_ms"), 0)),
        ("p99 ms", lambda r: _num(r.requests().get("p99_ms"), 0)),
        ("TTFT p50 ms", lambda r: _num(r.ttft().get("p50_ms"), 0)),
        ("TTFT p95 ms", lambda r: _num(r.ttft().get("p95_ms"), 0)),
        ("RSS start MB", lambda r: _num(r.rss_mb()[0], 0)),
        ("RSS end MB", lambda r: _num(r.rss_mb()[1], 0)),
        ("CPU ms/request", lambda r: _num(r.cpu_ms_per_request(), 2)),
    ]
    header = ["", *(r.name for r in results)]
    table = [header] + [[label, *(cell(r) for r in results)] for label, cell in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in table
    ]
    notes = [f"{r.name}: {r.reason}" for r in results if r.reason]
    return "\n".join(lines + notes)


def _failures(result: TargetResult) -> str:
    requests = result.requests()
    if not requests:
        return "-"
    return f"{requests.get('failures', 0)} ({100 * (requests.get('fail_ratio') or 0):.2f}%)"


def _int(value: Any) -> str:
    return "-" if value is None else str(int(value))


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"
