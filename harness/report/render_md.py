"""The report as Markdown: the first screen, then gates, differences, latency, context.

Charts are separate SVG files beside the report (``charts/<slug>.svg``), linked as images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from harness.report.first_screen import first_screen
from harness.report.formatting import interval_text, ms, pct, utc_text
from harness.report.model import Chart, DiffRow, DiffTable, GateResult, ReadinessReport
from harness.report.outcomes import Direction

__all__ = ["render_markdown"]

# Escaped: what always means something in a table cell or inline, ``<`` where it could open
# a tag, ``_`` where it could open or close emphasis (``count_tokens`` stays readable).
_SPECIAL = re.compile(r"([\\`*|\[\]]|<(?=[A-Za-z/!?])|(?<!\w)_|_(?!\w))")
_ICON = {"PASS": "PASS", "FAIL": "**FAIL**", "INCONCLUSIVE": "*INCONCLUSIVE*"}


def _esc(text: object) -> str:
    """Text made inert in Markdown: one line, special characters escaped."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", flat)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return lines


def _first_screen(report: ReadinessReport) -> list[str]:
    screen = first_screen(report)
    lines = [f"# Cutover readiness: {report.decision.value}", "", f"**{_esc(screen.headline)}**"]
    lines += ["", _esc(screen.evidence), ""]
    if screen.failed:
        lines += ["Failed gates:", ""] + [f"- {_esc(line)}" for line in screen.failed] + [""]
    if screen.inconclusive:
        lines += ["Inconclusive gates:", ""]
        lines += [f"- {_esc(line)}" for line in screen.inconclusive] + [""]
    if screen.informational:
        lines += ["Informational:", ""]
        lines += [f"- {_esc(line)}" for line in screen.informational] + [""]
    lines += ["Worst differences:", ""]
    lines += [f"{i}. {_esc(line)}" for i, line in enumerate(screen.worst, 1)] + [""]
    return lines


def _gates(gates: Sequence[GateResult]) -> list[str]:
    lines = ["## Gates", ""]
    lines += _table(
        ("gate", "status", "samples", "detail", "threshold"),
        (
            (
                _esc(g.name),
                _ICON[g.status.value],
                g.samples,
                _esc(g.summary) or "-",
                _esc(g.threshold),
            )
            for g in gates
        ),
    )
    lines.append("")
    for gate in gates:
        if not gate.checks:
            continue
        lines += [f"### {_esc(gate.name)}: {gate.status.value}", ""]
        lines += _table(
            ("check", "status", "samples", "measured", "threshold", "note"),
            (
                (
                    _esc(c.name),
                    _ICON[c.status.value],
                    c.samples,
                    _esc(c.measured),
                    _esc(c.threshold),
                    _esc(c.detail) or "-",
                )
                for c in gate.checks
            ),
        )
        lines.append("")
    return lines


def _uncomparable(report: ReadinessReport) -> list[str]:
    found = report.uncomparable
    if not found.rows:
        return []
    lines = [
        f"## Uncomparable captures: {found.rows:,} of {found.of_rows:,} rows "
        f"({pct(found.rate)}), in no gate's samples",
        "",
    ]
    lines += _table(("reason", "rows"), ((_esc(r), n) for r, n in found.reasons)) + [""]
    lines += _table(("row id", "reason"), ((i, _esc(r)) for i, r in found.listed))
    if found.left_out:
        lines += ["", f"{found.left_out:,} more rows not listed."]
    return lines + [""]


def _examples(row: DiffRow) -> list[str]:
    if not row.examples:
        return []
    lines = [f"Examples of `{row.key}` ({row.endpoint}):", ""]
    lines += _table(
        ("pair", "path", "SDK", "legacy", "note"),
        (
            (
                _esc(e["pair_id"]),
                _esc(e["path"]),
                _esc(e["sdk"]),
                _esc(e["legacy"]),
                _esc(e["detail"]) or "-",
            )
            for e in row.examples
        ),
    )
    return lines + [""]


def _differences(tables: Sequence[DiffTable]) -> list[str]:
    lines = ["## Differences (SDK vs legacy against the legacy A/A noise)", ""]
    if not tables:
        return lines + ["No compared pairs.", ""]
    for table in tables:
        lines += [
            f"### {_esc(table.endpoint)}: {table.compared:,} compared pairs, "
            f"{table.noise_samples:,} A/A repeats",
            "",
        ]
        shown = [r for r in table.categories if r.verdict != "ok" or r.noise_rate]
        if not shown:
            lines += ["No differences.", ""]
            continue
        lines += _table(
            ("category", "pairs", "difference rate", "noise rate", "verdict"),
            ((r.key, r.count, pct(r.rate), pct(r.noise_rate), r.verdict) for r in shown),
        )
        lines.append("")
        lines += _table(
            ("field", "category", "pairs", "difference rate", "noise rate", "verdict"),
            (
                (f"`{r.key}`", r.category, r.count, pct(r.rate), pct(r.noise_rate), r.verdict)
                for r in table.fields
            ),
        )
        if table.fields_left_out:
            lines += ["", f"{table.fields_left_out} more fields not listed."]
        lines.append("")
        for row in table.fields:
            if row.verdict in ("regression", "info"):
                lines += _examples(row)
    return lines


def _outcomes(report: ReadinessReport) -> list[str]:
    lines = ["## Outcomes: one proxy failed outright (5xx, 429, 408, no answer), one succeeded", ""]
    for direction, how, failing, shifts in (
        (
            Direction.SDK_BETTER,
            "set apart: not compared, not regressions",
            "legacy",
            report.sdk_better,
        ),
        (Direction.SDK_WORSE, "compared as always: counted in the gates", "SDK", report.sdk_worse),
    ):
        lines += [f"### {direction.label} ({how})", ""]
        if not shifts:
            lines += ["None.", ""]
            continue
        lines += _table(
            ("endpoint", "pairs", "of mirrored", f"{failing} answered", "examples"),
            (
                (
                    _esc(s.endpoint),
                    s.pairs,
                    f"{s.of_pairs} ({pct(s.rate)})",
                    _esc(s.failures_text),
                    _esc(", ".join(f"{e['pair_id']}: {e['detail']}" for e in s.examples[:2])),
                )
                for s in shifts
            ),
        )
        lines.append("")
    return lines


def _charts(charts: Iterable[Chart]) -> list[str]:
    lines: list[str] = []
    for chart in charts:
        lines += [f"![{_esc(chart.title)}](charts/{chart.slug}.svg)", ""]
    return lines


def _latency(report: ReadinessReport) -> list[str]:
    lines = ["## Latency (ms, SDK / legacy)", ""]
    if not report.latency:
        return lines + ["No successful exchanges with timings.", ""]

    def pair(values: dict[str, dict[str, float | None]], key: str) -> str:
        return f"{ms(values['sdk'][key])} / {ms(values['legacy'][key])}"

    lines += _table(
        (
            "slice",
            "samples",
            "p50",
            "p95",
            "p99",
            "TTFT p50",
            "TTFT p95",
            "p50 diff 95 % CI",
            "p95 diff 95 % CI",
        ),
        (
            (
                s.label,
                f"{s.samples['sdk']} / {s.samples['legacy']}",
                pair(s.total, "p50"),
                pair(s.total, "p95"),
                pair(s.total, "p99"),
                pair(s.ttft, "p50") if s.ttft else "-",
                pair(s.ttft, "p95") if s.ttft else "-",
                interval_text(s.intervals.get("p50")),
                interval_text(s.intervals.get("p95")),
            )
            for s in report.latency
        ),
    )
    lines += ["", "Intervals: 95 % bootstrap of SDK minus legacy.", ""]
    lines += _charts(c for c in report.charts if c.slug.startswith(("latency-", "ttft-")))
    return lines


def _load_and_memory(report: ReadinessReport) -> list[str]:
    lines = ["## Load runs", ""]
    if report.load:
        lines += _table(
            ("target", "run", "users", "requests", "failures", "rps", "p50", "p95", "p99", "SLO"),
            (
                (
                    s.target,
                    _esc(s.run),
                    s.users if s.users is not None else "-",
                    s.requests if s.requests is not None else "-",
                    s.failures if s.failures is not None else "-",
                    f"{s.rps:.1f}" if s.rps is not None else "-",
                    ms(s.p50_ms),
                    ms(s.p95_ms),
                    ms(s.p99_ms),
                    {True: "passed", False: "missed", None: "-"}[s.slo_passed],
                )
                for s in report.load
            ),
        )
    else:
        lines.append("No load runs.")
    lines += ["", "## Memory (RSS)", ""]
    if report.memory:
        lines += _table(
            ("target", "run", "samples", "duration", "first", "last", "slope"),
            (
                (
                    s.target,
                    _esc(s.run),
                    s.samples,
                    f"{s.duration_s:.0f} s",
                    f"{s.first_mb:.1f} MB" if s.first_mb is not None else "-",
                    f"{s.last_mb:.1f} MB" if s.last_mb is not None else "-",
                    f"{s.slope_mb_per_hour:+.1f} MB/h" if s.slope_mb_per_hour is not None else "-",
                )
                for s in report.memory
            ),
        )
    else:
        lines.append("No process samples.")
    return lines + [""] + _charts(c for c in report.charts if c.slug == "rss")


def _context(report: ReadinessReport) -> list[str]:
    c = report.context
    primaries = ", ".join(f"{t}: {n:,}" for t, n in c.primaries.items()) or "-"
    rows = (
        ("generated", utc_text(c.generated_at)),
        ("project version (memory_proxy)", c.project_version),
        ("litellm version", c.litellm_version),
        ("config", f"{c.config_path} (sha256 {c.config_sha256 or 'unreadable'})"),
        ("store", c.store_path),
        ("time span", f"{utc_text(c.first_received)} to {utc_text(c.last_received)}"),
        ("pairs", f"{c.pairs:,} ({c.mirrored:,} mirrored, {c.compared:,} compared)"),
        ("A/A repeats", f"{c.aa_samples:,}"),
        ("answered clients", primaries),
        ("sampling", f"{c.sample_rate:g} % of users mirrored, {c.aa_rate:g} % repeated (A/A)"),
        ("load runs / process samples", f"{c.load_runs} / {c.process_samples:,}"),
    )
    return ["## Run context", ""] + _table(("", ""), ((k, _esc(v)) for k, v in rows)) + [""]


def render_markdown(report: ReadinessReport) -> str:
    lines = _first_screen(report)
    lines += _gates(report.gates)
    lines += _uncomparable(report)
    lines += _differences(report.tables)
    lines += _outcomes(report)
    lines += _latency(report)
    lines += _load_and_memory(report)
    lines += _context(report)
    return "\n".join(lines).rstrip() + "\n"
