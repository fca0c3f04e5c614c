"""The building blocks of gates: Diffy checks, sample adequacy, combining checks (pure).

A check decides only with enough samples: below ``min_samples`` it is INCONCLUSIVE (and
says whether it would fail so far). A gate made of checks fails when any check fails,
is INCONCLUSIVE when any check cannot decide yet, and passes otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.compare import Thresholds, classify
from harness.report.formatting import pct
from harness.report.model import Check, Status, counts_text
from harness.report.outcomes import Direction
from harness.report.tally import DiffTally, Evidence
from harness.settings import HarnessSettings

__all__ = [
    "ENDPOINTS",
    "ERROR_WORDING",
    "GATED_CATEGORIES",
    "INFORMATIONAL_CATEGORIES",
    "REPLAY_EXACT_CATEGORIES",
    "RATIO_SLACK",
    "STRICT_CATEGORIES",
    "TARGETS",
    "NoiseBaseline",
    "category_checks",
    "combine",
    "diffy_check",
    "exact_categories",
    "judged_check",
    "gate_detail",
    "informational_check",
    "rates_measured",
    "sdk_better_check",
    "strict_check",
    "thresholds_of",
]

TARGETS = ("sdk", "legacy")
ENDPOINTS = ("chat", "messages", "count_tokens", "models", "health")
# (label, category) judged against the noise baseline
GATED_CATEGORIES = (
    ("status", "status"),
    ("schema", "schema"),
    ("type change", "type_change"),
    ("finish reason", "finish_reason"),
    ("content", "content"),
    ("usage", "usage"),
)
STRICT_CATEGORIES = (("tool calls", "tool_calls"),)
# Under replay both proxies got the same provider answer: what they make of it must match.
REPLAY_EXACT_CATEGORIES = frozenset(
    {"content", "tool_calls", "finish_reason", "usage", "stream_sequence", "stream_ending"}
)
# Shown in the tables, never a gate failure: wording, the model id spelling, headers,
# upstream request details (the memory headers have their own gate), anything else.
INFORMATIONAL_CATEGORIES = ("error_message", "model", "headers", "upstream", "other")
ERROR_WORDING = "informational: LiteLLM prefixes its error messages differently"
RATIO_SLACK = 1e-9  # "at most 10 % slower" includes exactly 10 %, whatever floats say


class NoiseBaseline:
    """The A/A noise a slice of pairs is judged against, and where it came from."""

    def __init__(self, own: DiffTally, fallback: DiffTally, min_samples: int) -> None:
        # A slice with too few A/A repeats of its own borrows the baseline of all pairs:
        # a noise rate from 3 repeats says nothing.
        if own.compared >= min_samples or own.compared >= fallback.compared:
            self.tally, self.source = own, "own"
        else:
            self.tally, self.source = fallback, "all endpoints"

    @property
    def samples(self) -> int:
        return self.tally.compared

    def rate(self, category: str) -> float:
        return self.tally.rate(category)

    def describe(self) -> str:
        if not self.samples:
            return "no A/A repeats: noise taken as 0"
        where = "" if self.source == "own" else f" ({self.source})"
        return f"noise from {self.samples} A/A repeats{where}"


def _adequate(status: Status, samples: int, min_samples: int) -> tuple[Status, str]:
    if samples >= min_samples:
        return status, ""
    note = "failing so far" if status is Status.FAIL else ""
    return Status.INCONCLUSIVE, note


def diffy_check(
    label: str,
    category: str,
    diffs: DiffTally,
    noise: NoiseBaseline,
    thresholds: Thresholds,
    min_samples: int,
) -> Check:
    """Diffy's rule: a regression only when the rate beats noise by both thresholds."""
    rate, noise_rate = diffs.rate(category), noise.rate(category)
    judged = classify(thresholds, {category: rate}, {category: noise_rate})[category]
    status, note = _adequate(
        Status.FAIL if judged.regression else Status.PASS, diffs.compared, min_samples
    )
    threshold = (
        f"fails above noise + {pct(thresholds.absolute)} and noise x {1 + thresholds.relative:.2f}"
    )
    return Check(
        label,
        status,
        diffs.compared,
        f"{pct(rate)} ({diffs.categories[category]} pairs; noise {pct(noise_rate)})",
        threshold,
        note,
    )


def strict_check(label: str, category: str, diffs: DiffTally, min_samples: int) -> Check:
    """Parity that must be exact (tool calls; under replay, the answer's substance): any
    difference fails."""
    count = diffs.categories[category]
    status, note = _adequate(Status.FAIL if count else Status.PASS, diffs.compared, min_samples)
    return Check(
        label,
        status,
        diffs.compared,
        f"{pct(diffs.rate(category))} ({count} pairs)",
        "0 differences (100 % parity)",
        note,
    )


def informational_check(label: str, category: str, diffs: DiffTally, why: str) -> Check:
    count = diffs.categories[category]
    return Check(
        label,
        Status.PASS,
        diffs.compared,
        f"{pct(diffs.rate(category))} ({count} pairs)",
        "informational",
        why,
    )


def sdk_better_check(pairs: int, counts: Iterable[tuple[str, int]], what: str = "legacy") -> Check:
    """The pairs set apart because legacy failed outright where the SDK succeeded.

    ``counts``: how legacy failed (``what="legacy"``), or any other breakdown.
    """
    breakdown = counts_text(counts)
    return Check(
        Direction.SDK_BETTER.label,
        Status.PASS,
        pairs,
        f"{pairs} pairs ({what} {breakdown})" if breakdown else f"{pairs} pairs",
        "informational: not a regression (SDK 2xx; legacy 5xx, 429, 408 or no answer)",
        "set apart, not compared: the differences only restate legacy's failure",
    )


def combine(checks: Iterable[Check]) -> Status:
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return Status.FAIL
    if Status.INCONCLUSIVE in statuses:
        return Status.INCONCLUSIVE
    return Status.PASS


def thresholds_of(settings: HarnessSettings) -> Thresholds:
    compare = settings.compare
    return Thresholds(
        compare.relative_threshold, compare.absolute_threshold, compare.content_similarity
    )


def exact_categories(evidence: Evidence) -> frozenset[str]:
    """The categories in which any difference fails: under replay the upstream answer was
    the same for both proxies, so the model's randomness excuses nothing."""
    return REPLAY_EXACT_CATEGORIES if evidence.replay_only else frozenset()


def judged_check(
    label: str,
    category: str,
    diffs: DiffTally,
    noise: NoiseBaseline,
    thresholds: Thresholds,
    min_samples: int,
    exact: frozenset[str] = frozenset(),
) -> Check:
    """Exact parity for the ``exact`` categories, Diffy's rule for the others."""
    if category in exact:
        return strict_check(label, category, diffs, min_samples)
    return diffy_check(label, category, diffs, noise, thresholds, min_samples)


def category_checks(
    diffs: DiffTally,
    noise: NoiseBaseline,
    thresholds: Thresholds,
    min_samples: int,
    exact: frozenset[str] = frozenset(),
) -> list[Check]:
    checks = [
        judged_check(label, category, diffs, noise, thresholds, min_samples, exact)
        for label, category in GATED_CATEGORIES
    ]
    checks.extend(strict_check(label, c, diffs, min_samples) for label, c in STRICT_CATEGORIES)
    return checks


def gate_detail(checks: list[Check], status: Status, prefix: str = "") -> str:
    failing = [c for c in checks if c.status is Status.FAIL]
    so_far = [c for c in checks if c.detail == "failing so far"]
    parts = [prefix] if prefix else []
    if status is Status.FAIL:
        parts.append("; ".join(f"{c.name} {c.measured}" for c in failing))
    elif so_far:
        parts.append("failing so far: " + "; ".join(f"{c.name} {c.measured}" for c in so_far))
    return "; ".join(p for p in parts if p)


def rates_measured(
    diffs: DiffTally, noise: NoiseBaseline, categories: list[str]
) -> dict[str, object]:
    return {
        "rates": {c: round(diffs.rate(c), 6) for c in categories},
        "noise_rates": {c: round(noise.rate(c), 6) for c in categories},
    }
