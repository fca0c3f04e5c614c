"""``harness report``: read the store, decide GO / NO-GO / INCONCLUSIVE, write the report.

Exit code 0 GO, 1 NO-GO, 2 INCONCLUSIVE (also for a missing store or a bad config).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.runs.scope import ReportScope

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="capture store (default: capture.store in harness.yaml)")
    parser.add_argument("--out", default="reports", help="where <UTC timestamp>/ goes")
    parser.add_argument("--harness-config", default="config/harness.yaml")
    parser.add_argument(
        "--config", default="config/config.yaml", help="the proxy config (hash, model aliases)"
    )
    parser.add_argument(
        "--workers", type=int, help="processes comparing pairs (default: 2 for large stores)"
    )
    parser.add_argument(
        "--run",
        metavar="ID",
        help="the run to report on: a run id (see `harness runs`), latest or all "
        "(default: latest; all when --since is given)",
    )
    parser.add_argument(
        "--since",
        metavar="T",
        help="only pairs received (and load runs started) at or after T: an ISO time "
        "(UTC unless it says), unix seconds, or an age such as 30m, 2h, 1d",
    )


def run(args: argparse.Namespace) -> int:
    from harness.report.evidence import collect_evidence, run_info
    from harness.report.first_screen import first_screen
    from harness.report.output import write_report
    from harness.report.readiness import build_report
    from harness.settings import load_harness_settings

    settings = load_harness_settings(args.harness_config)
    store = Path(args.store) if args.store else settings.capture.store
    run = run_info(args.config, store)
    scope = _scope(store, args.run, args.since)
    evidence = collect_evidence(
        store, settings, run, config_path=args.config, workers=args.workers, scope=scope
    )
    report = build_report(evidence, settings)
    run_dir = write_report(report, args.out)
    screen = first_screen(report)
    out = sys.stdout
    print(f"Cutover readiness: {screen.headline}", file=out)
    print(screen.evidence, file=out)
    for title, lines in (
        ("Failed", screen.failed),
        ("Inconclusive", screen.inconclusive),
        ("Informational", screen.informational),
    ):
        if lines:
            print(f"{title}:", file=out)
            for line in lines:
                print(f"  - {line}", file=out)
    print("Worst differences:", file=out)
    for i, line in enumerate(screen.worst, 1):
        print(f"  {i}. {line}", file=out)
    print(f"Report: {run_dir / 'report.html'} (also report.md, report.json)", file=out)
    return report.decision.exit_code


def _scope(store: Path, run: str | None, since: str | None) -> ReportScope | None:
    """What ``--run`` and ``--since`` select; None when there is no store (the evidence
    reader says so)."""
    from harness.runs.scope import parse_since, resolve_scope
    from harness.store.capture_store import CaptureStore

    if not store.is_file():
        return None
    with CaptureStore(store, spill=False) as opened:
        return resolve_scope(opened, run, parse_since(since) if since is not None else None)
