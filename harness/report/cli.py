"""``harness report``: read the store, decide GO / NO-GO / INCONCLUSIVE, write the report.

Exit code 0 GO, 1 NO-GO, 2 INCONCLUSIVE (also for a missing store or a bad config).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.report.model import ReadinessReport
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
        "--junit", metavar="FILE", help="also write JUnit XML: one testcase per gate"
    )
    parser.add_argument(
        "--summary", metavar="FILE", help="also write a short Markdown summary (CI job summary)"
    )
    parser.add_argument(
        "--compare-to",
        metavar="PATH",
        help="an earlier report.json (or its folder) to name what changed "
        "(default: the report <out>/latest points at)",
    )
    parser.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="FILE",
        help="accepted differences to apply too (e.g. config/accepted-differences.yaml)",
    )
    parser.add_argument(
        "--run",
        metavar="ID",
        help="the run to report on: a run id (see `harness runs`), latest or all "
        "(default: latest; all when --since or --instance is given)",
    )
    parser.add_argument(
        "--since",
        metavar="T",
        help="only pairs received (and load runs started) at or after T: an ISO time or "
        "date (UTC unless it says), unix seconds, or an age such as 30m, 2h, 1d",
    )
    parser.add_argument(
        "--instance",
        help="only the pairs this proxy instance captured (capture.instance; a team's store)",
    )


def _with_history(report: ReadinessReport, out: str, compare_to: str | None) -> ReadinessReport:
    """The report with what changed since ``compare_to`` (default: the latest report in
    ``out``) and the timeline of the earlier reports in ``out``."""
    from harness.errors import HarnessError
    from harness.report.changes import compare_reports, timeline
    from harness.report.output import earlier_reports, latest_report, read_report_json
    from harness.report.render_json import report_dict

    current = report_dict(report)
    against = Path(compare_to) if compare_to else latest_report(out)
    changes = None
    if against is not None:
        try:
            previous = read_report_json(against)
        except HarnessError:
            if compare_to:  # asked for by name: say why it cannot be read
                raise
            previous = None  # the default is best effort: a foreign `latest` is no history
        if previous is not None:
            changes = compare_reports(previous, current, str(against))
    return dataclasses.replace(
        report, changes=changes, timeline=timeline(earlier_reports(out), current)
    )


def _write_ci_outputs(report: ReadinessReport, junit: str | None, summary: str | None) -> None:
    from harness.report.ci_outputs import render_junit, render_summary

    for path, render in ((junit, render_junit), (summary, render_summary)):
        if path:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(report), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    from harness.report.canary import read_canary
    from harness.report.evidence import collect_evidence, run_info, with_drilldown
    from harness.report.first_screen import first_screen
    from harness.report.output import write_report
    from harness.report.readiness import build_report
    from harness.report.sections import changes_rows
    from harness.settings import load_accept_file, load_harness_settings, with_accepted

    settings = load_harness_settings(args.harness_config)
    for path in getattr(args, "accept", None) or ():
        settings = with_accepted(settings, load_accept_file(path))
    # A file path, or a team's postgresql:// URL (or os.environ/VAR naming one).
    store = args.store if args.store else settings.capture.store
    run = run_info(args.config, store)
    scope = _scope(store, args.run, args.since, getattr(args, "instance", None))
    evidence = collect_evidence(
        store, settings, run, config_path=args.config, workers=args.workers, scope=scope
    )
    report = build_report(evidence, settings)
    canary = read_canary(store)
    if canary is not None:
        report = dataclasses.replace(report, canary=canary)
    report = with_drilldown(report, evidence, store, settings, run, config_path=args.config)
    report = _with_history(report, args.out, getattr(args, "compare_to", None))
    run_dir = write_report(report, args.out)
    _write_ci_outputs(report, getattr(args, "junit", None), getattr(args, "summary", None))
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
    if report.changes is not None:
        print(f"Changed since {report.changes.against}:", file=out)
        rows = changes_rows(report)
        for what, name, before, now in rows:
            print(f"  - {what}: {name}: {before} -> {now}", file=out)
        if not rows:
            print("  - nothing", file=out)
    print("Worst differences:", file=out)
    for i, line in enumerate(screen.worst, 1):
        print(f"  {i}. {line}", file=out)
    print(f"Report: {run_dir / 'report.html'} (also report.md, report.json)", file=out)
    return report.decision.exit_code


def _scope(
    store: str | Path, run: str | None, since: str | None, instance: str | None
) -> ReportScope | None:
    """What ``--run``, ``--since`` and ``--instance`` select; None when there is no store
    (the evidence reader says so)."""
    from harness.runs.scope import parse_since, resolve_scope
    from harness.store.capture_store import CaptureStore
    from harness.store.dialect import store_exists

    if not store_exists(store, "--store"):
        return None
    with CaptureStore(store, spill=False, setting="--store") as opened:
        start = parse_since(since) if since is not None else None
        return resolve_scope(opened, run, start, instance)
