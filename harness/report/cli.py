"""``harness report``: read the store, decide GO / NO-GO / INCONCLUSIVE, write the report.

Exit code 0 GO, 1 NO-GO, 2 INCONCLUSIVE (also for a missing store or a bad config).
"""

from __future__ import annotations

import argparse
import sys

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
        "--instance", help="only the pairs this proxy instance captured (capture.instance)"
    )
    parser.add_argument(
        "--since", help="only pairs received since: a UTC date/time or an age (24h, 7d)"
    )


def run(args: argparse.Namespace) -> int:
    from harness.report.evidence import collect_evidence, run_info
    from harness.report.filters import filter_text, pair_filter
    from harness.report.first_screen import first_screen
    from harness.report.output import write_report
    from harness.report.readiness import build_report
    from harness.settings import load_harness_settings

    settings = load_harness_settings(args.harness_config)
    # A file path, or a team's postgresql:// URL (or os.environ/VAR naming one).
    store = args.store if args.store else settings.capture.store
    where = pair_filter(args.instance, args.since)
    run = run_info(args.config, store, filters=filter_text(where))
    evidence = collect_evidence(
        store, settings, run, config_path=args.config, workers=args.workers, where=where
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
