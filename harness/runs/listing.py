"""``harness runs``'s lines (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from harness.errors import HarnessError
from harness.runs.coverage import coverage_of
from harness.store.runs import RunRecord

__all__ = ["ResetRefused", "run_lines"]


class ResetRefused(HarnessError, RuntimeError):
    """``harness reset`` while a run is open."""


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "open"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run_lines(runs: Sequence[RunRecord], legacy_pairs: int = 0) -> list[str]:
    """One line per run: id, start, end, mode, pairs, load runs, coverage, SDK version."""
    if not runs and not legacy_pairs:
        return ["no runs (start one with `harness shadow`)"]
    lines = []
    for run in runs:
        coverage = coverage_of(run.counters)
        covered = coverage.line() if coverage is not None else "coverage not recorded"
        lines.append(
            f"run {run.id}: {_utc(run.started_at)} to {_utc(run.ended_at)} UTC, {run.mode}, "
            f"{run.primary_role or '?'} answering; {run.pairs:,} pairs, {run.load_runs} load "
            f"runs; {covered}; sdk: {run.versions.get('sdk', '?')}"
        )
    if legacy_pairs:
        lines.append(
            f"{legacy_pairs:,} pairs of no run (stored before runs existed, or by a tool "
            "outside one): `harness report --run all` reads them"
        )
    return lines
