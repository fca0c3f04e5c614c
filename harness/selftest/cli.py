"""``harness selftest``: run the seeded-defect catalogue and print the defect -> gate table.

Exit 0 when every defect is caught by its gate and the control run (the same build on
both sides, no defect) fails no gate; 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.report.formatting import MISSING, interval_text, ms
from harness.selftest.run import DefectResult

__all__ = ["add_arguments", "format_aa_latency", "format_table", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times the reduced corpus (and the latency probes) are sent per run",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the stack's configs go (default: a temporary dir)"
    )


def run(args: argparse.Namespace) -> int:
    from harness.selftest.run import run_catalogue

    if args.rounds < 1:
        print("harness selftest: --rounds must be at least 1", file=sys.stderr)
        return 2
    results = run_catalogue(rounds=args.rounds, workdir=args.workdir)
    print(format_table(results))
    if results and results[0].defect is None:
        print()
        print(format_aa_latency(results[0]))
    return 0 if all(r.caught for r in results) else 1


def format_table(results: Sequence[DefectResult]) -> str:
    """The defect -> gate table (Markdown), one row per run, the control first."""
    lines = [
        "| defect | where | expected gate | verdict | failed gates |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        defect = result.defect
        if defect is None:
            name, where, gate = "none (same build on both sides)", "-", "no gate fails"
        else:
            name, where, gate = defect.name, defect.place, defect.expected
        if defect is None:
            verdict = "clean" if result.caught else "NOT CLEAN"
        else:
            verdict = "NO-GO, caught" if result.caught else "MISSED"
        failed = ", ".join(_failed_text(result, g) for g in result.failed) or "-"
        lines.append(f"| {name} | {where} | {gate} | {verdict} | {failed} |")
    caught = sum(r.caught for r in results if r.defect is not None)
    seeded = sum(r.defect is not None for r in results)
    lines.append("")
    lines.append(
        f"{caught} of {seeded} defects caught by their gate; control clean: "
        f"{'yes' if results and results[0].caught else 'no'}"
    )
    return "\n".join(lines)


def _failed_text(result: DefectResult, gate: str) -> str:
    """A failed gate, with its failing checks where a gate per slice has several."""
    checks = result.failed_checks.get(gate, ())
    return f"{gate} ({', '.join(checks)})" if gate.startswith("latency") and checks else gate


def format_aa_latency(control: DefectResult) -> str:
    """The control's latency per slice: the same build timed on both sides (A/A)."""
    lines = [
        "A/A latency (same build both sides; candidate `sdk` vs twin `legacy`):",
        "",
        "| slice | samples | p50 sdk / legacy | p50 ratio | p95 ratio | p50 diff 95 % CI |",
        "|---|---|---|---|---|---|",
    ]
    for s in control.latency:
        p50 = s.total["sdk"]["p50"], s.total["legacy"]["p50"]
        p95 = s.total["sdk"]["p95"], s.total["legacy"]["p95"]
        lines.append(
            f"| {s.label} | {min(s.samples.values())} | {ms(p50[0])} / {ms(p50[1])} "
            f"| {_ratio(*p50)} | {_ratio(*p95)} | {interval_text(s.intervals.get('p50'))} ms |"
        )
    return "\n".join(lines)


def _ratio(sdk: float | None, legacy: float | None) -> str:
    return f"{sdk / legacy:.2f}" if sdk is not None and legacy else MISSING
