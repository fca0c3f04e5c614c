"""``harness selftest``: run the seeded-defect catalogue and print the defect -> gate table.

Exit 0 when every defect is caught by its gate and the control run (the same build on
both sides, no defect) fails no gate; 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.selftest.run import DefectResult

__all__ = ["add_arguments", "format_table", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rounds", type=int, default=1, help="times the reduced corpus is sent per defect"
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
            name, where, gate = defect.name, defect.place, defect.gate
        if defect is None:
            verdict = "clean" if result.caught else "NOT CLEAN"
        else:
            verdict = "NO-GO, caught" if result.caught else "MISSED"
        failed = ", ".join(result.failed) or "-"
        lines.append(f"| {name} | {where} | {gate} | {verdict} | {failed} |")
    caught = sum(r.caught for r in results if r.defect is not None)
    seeded = sum(r.defect is not None for r in results)
    lines.append("")
    lines.append(
        f"{caught} of {seeded} defects caught by their gate; control clean: "
        f"{'yes' if results and results[0].caught else 'no'}"
    )
    return "\n".join(lines)
