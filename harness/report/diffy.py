"""Diffy's view of the differences: per endpoint, per category and per field (pure).

Each row is a difference rate (pairs where SDK and legacy differ) beside the noise rate
(pairs where legacy differs from itself) and a verdict: ``regression`` (above the noise
by both thresholds; any tool-call difference), ``info`` (the same, in a category that is
informational, such as error wording), ``noise`` (within the noise: the A/A repeats showed
this difference too), ``not in A/A`` (below the thresholds, but never seen between legacy
and its own repeat: rare is not noise, so it is not called noise and its examples are
shown), ``ok`` (none).
"""

from __future__ import annotations

from harness.compare import CATEGORIES, Thresholds, classify
from harness.report.checks import (
    ENDPOINTS,
    INFORMATIONAL_CATEGORIES,
    STRICT_CATEGORIES,
    NoiseBaseline,
)
from harness.report.model import DiffRow, DiffTable, OutcomeShift
from harness.report.outcomes import Direction
from harness.report.tally import DiffTally, Evidence

__all__ = ["FIELD_ROWS", "NOT_IN_AA", "diff_tables", "outcome_shifts", "worst_differences"]

FIELD_ROWS = 40  # per endpoint; the rest are counted, not listed
_STRICT = frozenset(c for _, c in STRICT_CATEGORIES)
_INFO = frozenset(INFORMATIONAL_CATEGORIES)
NOT_IN_AA = "not in A/A"
_RANK = {"regression": 0, NOT_IN_AA: 1, "info": 2, "noise": 3, "ok": 4}


def _verdict(category: str, count: int, regression: bool, noise_rate: float) -> str:
    if not count:
        return "ok"
    if category in _STRICT:
        return "regression"
    if regression:
        return "info" if category in _INFO else "regression"
    # Noise is what the A/A repeats show: a difference they never showed is not noise,
    # however rare.
    if noise_rate <= 0:
        return "info" if category in _INFO else NOT_IN_AA
    return "noise"


def _table(
    endpoint: str, diffs: DiffTally, noise: NoiseBaseline, thresholds: Thresholds
) -> DiffTable:
    noise_tally = noise.tally
    judged = classify(thresholds, diffs.category_rates(), noise_tally.category_rates())
    categories = []
    for category in CATEGORIES:
        assessment = judged.get(category)
        if assessment is None:
            continue
        count = diffs.categories[category]
        categories.append(
            DiffRow(
                endpoint,
                category,
                category,
                count,
                assessment.rate,
                assessment.noise_rate,
                _verdict(category, count, assessment.regression, assessment.noise_rate),
            )
        )
    field_judged = classify(thresholds, diffs.field_rates(), noise_tally.field_rates())
    fields = []
    for key, assessment in field_judged.items():
        category = diffs.field_category.get(key) or noise_tally.field_category.get(key, "other")
        count = diffs.fields[key]
        fields.append(
            DiffRow(
                endpoint,
                key,
                category,
                count,
                assessment.rate,
                assessment.noise_rate,
                _verdict(category, count, assessment.regression, assessment.noise_rate),
                tuple(e.to_dict() for e in diffs.examples.get(key, ())),
            )
        )
    fields.sort(key=lambda r: (_RANK[r.verdict], -r.excess, -r.rate, r.key))
    return DiffTable(
        endpoint,
        diffs.compared,
        noise.samples,
        tuple(categories),
        tuple(fields[:FIELD_ROWS]),
        max(0, len(fields) - FIELD_ROWS),
    )


def diff_tables(
    evidence: Evidence, thresholds: Thresholds, min_samples: int
) -> tuple[DiffTable, ...]:
    overall = evidence.overall_noise()
    endpoints = [e for e in ENDPOINTS if e in evidence.diffs]
    endpoints += sorted(set(evidence.diffs) - set(ENDPOINTS))
    return tuple(
        _table(
            endpoint,
            evidence.diffs[endpoint],
            NoiseBaseline(evidence.noise.get(endpoint, DiffTally()), overall, min_samples),
            thresholds,
        )
        for endpoint in endpoints
    )


def _endpoints(evidence: Evidence) -> list[str]:
    known = set(evidence.diffs) | set(evidence.sdk_better.endpoints)
    return [e for e in ENDPOINTS if e in known] + sorted(known - set(ENDPOINTS))


def outcome_shifts(evidence: Evidence, direction: Direction) -> tuple[OutcomeShift, ...]:
    """Per endpoint, the pairs where one proxy succeeded and the other failed outright."""
    tally = evidence.sdk_better if direction is Direction.SDK_BETTER else evidence.sdk_worse
    shifts = []
    for endpoint in _endpoints(evidence):
        pairs = tally.endpoints[endpoint]
        if not pairs:
            continue
        compared = evidence.diffs[endpoint].compared if endpoint in evidence.diffs else 0
        shifts.append(
            OutcomeShift(
                endpoint,
                direction.value,
                pairs,
                compared + evidence.sdk_better.endpoints[endpoint],
                tally.ranked_failures(endpoint),
                tuple(e.to_dict() for e in tally.examples.get(endpoint, ())),
            )
        )
    return tuple(shifts)


def _worse_row(shift: OutcomeShift, table: DiffTable, thresholds: Thresholds) -> DiffRow:
    """The SDK's outright failures as a status row, judged like any status difference."""
    noise = next((r.noise_rate for r in table.categories if r.key == "status"), 0.0)
    rate = shift.pairs / table.compared if table.compared else 0.0
    judged = classify(thresholds, {"status": rate}, {"status": noise})["status"]
    return DiffRow(
        shift.endpoint,
        f"{Direction.SDK_WORSE.label}: SDK {shift.failures_text}",
        "status",
        shift.pairs,
        rate,
        noise,
        _verdict("status", shift.pairs, judged.regression, noise),
        shift.examples,
    )


def worst_differences(
    tables: tuple[DiffTable, ...],
    sdk_worse: tuple[OutcomeShift, ...] = (),
    thresholds: Thresholds | None = None,
    limit: int = 3,
) -> tuple[DiffRow, ...]:
    """The fields that differ most beyond their noise, regressions first.

    The SDK's outright failures where legacy succeeded come before anything else, whatever
    their rate: a cutover must not make a client's request fail. Then one field per
    endpoint and category: a tool call that differs shows up in its name, input and type at
    once, and three lines about one cause would hide the next one.
    """
    thresholds = thresholds or Thresholds()
    by_endpoint = {t.endpoint: t for t in tables}
    first = [
        _worse_row(s, by_endpoint[s.endpoint], thresholds)
        for s in sdk_worse
        if s.endpoint in by_endpoint
    ]
    first.sort(key=lambda r: (_RANK[r.verdict], -r.excess, -r.rate, r.endpoint))
    rows = [r for t in tables for r in t.fields if r.count]
    rows.sort(key=lambda r: (_RANK[r.verdict], -r.excess, -r.rate, r.endpoint, r.key))
    seen: set[tuple[str, str]] = set()
    worst = []
    for row in [*first, *rows]:
        if (row.endpoint, row.category) in seen:
            continue
        seen.add((row.endpoint, row.category))
        worst.append(row)
    return tuple(worst[:limit])
