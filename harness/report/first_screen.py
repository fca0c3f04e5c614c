"""What a reader must see in ten seconds, as plain lines every renderer shows alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.report.formatting import pct, utc_text
from harness.report.model import (
    Decision,
    DiffRow,
    GateResult,
    OutcomeShift,
    ReadinessReport,
    Uncomparable,
)
from harness.report.outcomes import Direction

__all__ = [
    "FirstScreen",
    "accepted_line",
    "first_screen",
    "gate_line",
    "not_mirrored_line",
    "not_mirrored_text",
    "sdk_better_line",
    "uncomparable_line",
    "live_line",
    "upstream_mode_line",
    "worst_line",
    "coverage_line",
    "run_text",
]


@dataclass(frozen=True)
class FirstScreen:
    headline: str
    failed: tuple[str, ...]
    inconclusive: tuple[str, ...]
    worst: tuple[str, ...]
    evidence: str
    informational: tuple[str, ...] = ()  # said, never a failed gate


def gate_line(gate: GateResult) -> str:
    summary = gate.summary
    return f"{gate.name} ({gate.samples} samples)" + (f": {summary}" if summary else "")


def worst_line(row: DiffRow) -> str:
    example = next((str(e["pair_id"]) for e in row.examples if e.get("pair_id")), "")
    return (
        f"{row.endpoint} {row.key} ({row.category}): {pct(row.rate)} of pairs differ, "
        f"noise {pct(row.noise_rate)}: {row.verdict}"
        + (f" (e.g. pair {example})" if example else "")
    )


def sdk_better_line(shifts: tuple[OutcomeShift, ...]) -> str:
    """``legacy failed where the SDK succeeded in 239 pairs ...: chat 122 of 383 (504 x89)``."""
    total = sum(s.pairs for s in shifts)
    per_endpoint = "; ".join(
        f"{s.endpoint} {s.pairs} of {s.of_pairs} ({s.failures_text})" for s in shifts
    )
    label = Direction.SDK_BETTER.label
    return f"{label} in {total:,} pairs, set apart (not regressions): {per_endpoint}"


def upstream_mode_line(report: ReadinessReport) -> str:
    """How the mirror side reached the provider: the reader must know before the diffs."""
    modes = report.context.upstream_modes
    replay, live = modes.get("replay", 0), modes.get("live", 0)
    if not replay:
        return live_line(report)
    line = (
        f"Upstream held fixed (replay) for {replay:,} pairs: the mirror side was answered with "
        "the provider's answers to the primary, so nothing reached the provider twice and "
        "content, tool calls, finish reason, usage and stream events must match exactly"
    )
    if report.context.replay_unrecorded:
        line += (
            f"; {report.context.replay_unrecorded:,} pairs had no provider call of the "
            "primary's to replay (answered locally or refused first)"
        )
    if live:
        line += f"; {live:,} pairs mirrored live (the upstream not held fixed)"
        spent = live_line(report)
        if spent:
            line += ". " + spent
    return line


def live_line(report: ReadinessReport) -> str:
    """Live mirroring: what the mirror side cost, and the memory isolation in force."""
    spend = report.context.live
    if not spend:
        return ""
    line = (
        f"Mirrored live for {spend['pairs']:,} pairs: the mirror side called the provider "
        f"itself ({spend['requests']:,} requests, {spend['tokens']:,} tokens by the answers' "
        f"usage); memory isolation (the mirror's memory ids suffixed {spend['suffix']!r}): "
    )
    checked, isolated = spend["checked"], spend["isolated"]
    if checked:
        line += f"{isolated:,} of {checked:,} pairs whose mirror calls were recorded"
    else:
        line += "configured, no mirror-side provider call recorded to confirm it"
    return line


def not_mirrored_text(outcomes: Mapping[str, int]) -> str:
    """``3 (not mirrored: shutdown: 3)``: pairs stored with the primary's answer only."""
    listed = ", ".join(f"{outcome}: {n:,}" for outcome, n in sorted(outcomes.items()))
    return f"{sum(outcomes.values()):,} ({listed})"


def not_mirrored_line(report: ReadinessReport) -> str:
    """Pairs that hold the primary's answer only: said on the first screen, since they
    are in no comparison (a stop, for one, stores the mirrors it did not send)."""
    outcomes = report.context.not_mirrored
    if not outcomes:
        return ""
    return (
        f"{not_mirrored_text(outcomes)} pairs not mirrored: stored with the primary's answer "
        "only, in no comparison"
    )


def accepted_line(report: ReadinessReport) -> str:
    """``12 pairs with accepted differences (3 rules applied; stale: x; expired: y)``."""
    rules = report.accepted
    if not rules:
        return ""
    applied = sum(1 for r in rules if r.state == "applied")
    line = (
        f"{report.accepted_pairs:,} pairs with accepted differences, not regressions "
        f"({applied} of {len(rules)} rules applied"
    )
    for state in ("stale", "expired", "refused"):
        names = [r.name for r in rules if r.state == state]
        if names:
            line += f"; {state}: {', '.join(names)}"
    refused = sum(r.refused for r in rules)
    if refused:
        line += f"; {refused:,} SDK failures no rule may hide"
    return line + ")"


def uncomparable_line(found: Uncomparable) -> str:
    """``3 rows could not be compared (0.7 % of 420), in no gate: rows 12, 40, 41 ...``."""
    ids = ", ".join(str(row_id) for row_id, _ in found.listed[:10])
    more = f" and {found.rows - 10:,} more" if found.rows > 10 else ""
    return (
        f"{found.rows:,} rows could not be compared ({pct(found.rate)} of {found.of_rows:,}), "
        f"in no gate's samples: rows {ids}{more} (reasons under Uncomparable captures)"
    )


def run_text(report: ReadinessReport) -> str:
    """``run 3 (replay, sdk answering), 2026-12-07 03:00:00 UTC to 03:05:00 UTC``."""
    run = report.context.shadow_run
    if run is None:
        return report.context.scope
    end = utc_text(run.ended_at) if run.ended_at is not None else "still open"
    # What the scope adds to the run: ", since T" and/or ", instance NAME".
    narrowed = report.context.scope.removeprefix(f"run {run.id}")
    return (
        f"run {run.id} ({run.mode}, {run.primary_role or '?'} answering clients), "
        f"{utc_text(run.started_at)} to {end}" + narrowed.replace(", since ", ", pairs since ")
    )


def coverage_line(report: ReadinessReport) -> str:
    """``Mirror coverage: 1,840 of 2,000 requests mirrored; 160 skipped: breaker open 150,
    queue full 10``: the pairs compared are only the requests that were mirrored."""
    if report.context.shadow_run is None:
        return ""
    coverage = report.context.coverage
    if coverage is None:
        return (
            "Mirror coverage: not recorded (the run is still open, or ended without "
            "recording its counters)"
        )
    return f"Mirror coverage: {coverage.line()}"


def first_screen(report: ReadinessReport) -> FirstScreen:
    total = len(report.gates)
    failed, inconclusive = report.failed, report.inconclusive
    if report.decision is Decision.GO:
        headline = f"GO: all {total} gates passed"
    elif report.decision is Decision.NO_GO:
        headline = f"NO-GO: {len(failed)} of {total} gates failed"
        if inconclusive:
            headline += f", {len(inconclusive)} inconclusive"
    else:
        headline = (
            f"INCONCLUSIVE: {len(inconclusive)} of {total} gates cannot decide yet, none failed"
        )
    c = report.context
    better = sum(s.pairs for s in report.sdk_better)
    apart = f", {better:,} set apart" if better else ""
    found = report.uncomparable
    uncomparable = f", {found.rows:,} uncomparable rows" if found.rows else ""
    run = f"{run_text(report)}: " if c.shadow_run is not None else ""
    evidence = (
        f"{run}{c.pairs:,} pairs ({c.compared:,} compared{apart}, {c.aa_samples:,} A/A repeats"
        f"{uncomparable}) received {utc_text(c.first_received)} to "
        f"{utc_text(c.last_received)}; exit code {report.decision.exit_code}"
    )
    informational = [sdk_better_line(report.sdk_better)] if report.sdk_better else []
    mode = upstream_mode_line(report)
    if mode:
        informational.insert(0, mode)
    unmirrored = not_mirrored_line(report)
    if unmirrored:
        informational.append(unmirrored)
    accepted = accepted_line(report)
    if accepted:
        informational.append(accepted)
    if found.rows:
        # Said even when the captures-readable gate passes: these rows are in no gate.
        informational.insert(0, uncomparable_line(found))
    coverage = coverage_line(report)
    if coverage:
        # First: every comparison below is of the mirrored requests only.
        informational.insert(0, coverage)
    return FirstScreen(
        headline,
        tuple(gate_line(g) for g in failed),
        tuple(gate_line(g) for g in inconclusive),
        tuple(worst_line(r) for r in report.worst) or ("no differences between SDK and legacy",),
        evidence,
        tuple(informational),
    )
