"""Thin renderers over a :class:`BenchResult`: Markdown for people, JSON for tools."""

from __future__ import annotations

import json
from pathlib import Path

from harness.bench.model import BenchResult, PathCaseSummary, ratio

__all__ = ["render_markdown", "render_table", "write_results"]

COLUMNS = (
    "path",
    "req/s",
    "x direct",
    "x legacy",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "TTFT p50 ms",
    "server CPU ms/req",
    "peak RSS MB",
    "ready s",
    "failed",
)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cpu(summary: PathCaseSummary) -> str:
    total = _num(summary.server_cpu_ms, 2)
    roles = summary.server_cpu_ms_by_role
    if len(roles) > 1:
        total += " (" + " + ".join(f"{r} {v:.2f}" for r, v in roles.items()) + ")"
    if summary.drain_cpu_ms is not None:
        total += f" + {summary.drain_cpu_ms:.2f} after the window (mirror draining)"
    side = summary.side_cpu_ms_by_role
    if side:
        total += "; mirror side " + " + ".join(f"{r} {v:.2f}" for r, v in side.items())
    return total


def render_table(result: BenchResult, case: str) -> str:
    summaries = result.summaries()
    ready = {p.name: p.ready_seconds for p in result.paths}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for info in result.paths:
        s = summaries.get((info.name, case))
        if s is None:
            continue
        to_direct = ratio(s.rps, summaries.get(("direct", case)))
        to_legacy = ratio(s.rps, summaries.get(("legacy", case)))
        row = (
            s.path,
            f"{s.rps:.0f}",
            _num(to_direct, 2),
            _num(to_legacy, 1),
            _num(s.p50_ms),
            _num(s.p95_ms),
            _num(s.p99_ms),
            _num(s.ttft_p50_ms),
            _cpu(s),
            f"{s.peak_rss_mb:.0f}",
            f"{ready.get(s.path, 0.0):.1f}",
            f"{s.failed}/{s.requests}",
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_markdown(result: BenchResult) -> str:
    settings = result.settings
    machine = result.machine
    out = [
        f"# harness bench: {result.started_at}",
        "",
        f"{settings['requests']} requests per round, {settings['concurrency']} concurrent, "
        f"{settings['rounds']} round(s) after {settings['warmup']} warm-up requests per path "
        "and case; medians over rounds. Load generator: aiohttp in its own process.",
        f"Machine: {machine.get('cpus')} CPUs, load average at start {machine.get('loadavg')}, "
        f"Python {machine.get('python')}, litellm {machine.get('litellm')}.",
        "",
        "Server CPU ms/req: user+system CPU of every process of the path (their whole process "
        "groups) over the measured window, per successful request. Peak RSS: VmHWM summed over "
        "the path's processes. Ready: seconds to ready of its slowest process.",
    ]
    for case in result.cases:
        out += ["", f"## {case}", "", render_table(result, case)]
    if result.soak is not None:
        soak = result.soak
        out += [
            "",
            "## Soak (SDK proxy)",
            "",
            f"{soak.ok}/{soak.requests} requests after warm-up: RSS {soak.rss_start_mb:.1f} MB -> "
            f"{soak.rss_end_mb:.1f} MB (peak {soak.rss_peak_mb:.1f} MB), "
            f"growth {soak.growth_mb:+.1f} MB.",
        ]
    if result.targets:
        out += [
            "",
            "## Targets",
            "",
            "| target | measured | limit | verdict | detail |",
            "|---|---|---|---|---|",
        ]
        for t in result.targets:
            out.append(
                f"| {t.name} | {_num(t.measured, 2)} {t.unit} | {t.op} {t.limit:g} {t.unit} | "
                f"**{t.verdict}** | {t.detail} |"
            )
    if result.notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(out) + "\n"


def write_results(result: BenchResult, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "results.json"
    md_path = folder / "results.md"
    json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(result), encoding="utf-8")
    return json_path, md_path
