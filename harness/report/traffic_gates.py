"""Gates on the answers themselves: functional parity per endpoint, streaming, errors (pure).

Categories follow Diffy (a regression only above the A/A noise by both the relative and
the absolute threshold), except tool calls, which must match exactly. Error wording
(``error_message``) is informational: LiteLLM prefixes its errors differently. Health is
never mirrored by shadow mode, so its gate stays INCONCLUSIVE until replayed pairs exist.
Pairs where legacy failed outright and the SDK succeeded are not compared (not in the
samples either); each gate lists them as an informational check.
"""

from __future__ import annotations

from harness.compare import Thresholds
from harness.report.checks import (
    ERROR_WORDING,
    GATED_CATEGORIES,
    STRICT_CATEGORIES,
    NoiseBaseline,
    category_checks,
    combine,
    diffy_check,
    exact_categories,
    gate_detail,
    informational_check,
    judged_check,
    rates_measured,
    sdk_better_check,
    strict_check,
)
from harness.report.formatting import pct
from harness.report.model import Check, GateResult, Status
from harness.report.tally import DiffTally, Evidence

__all__ = ["error_gate", "parity_gate", "streaming_gate"]


def parity_gate(
    endpoint: str,
    evidence: Evidence,
    overall: DiffTally,
    thresholds: Thresholds,
    min_samples: int,
) -> GateResult:
    name = f"parity: {endpoint}"
    diffs = evidence.diffs.get(endpoint, DiffTally())
    pairs = evidence.endpoint_pairs[endpoint]
    threshold = (
        f"tool calls exact; status, schema, finish reason, content, usage within the A/A "
        f"noise (+{pct(thresholds.absolute)}, x{1 + thresholds.relative:.2f}); "
        f">= {min_samples} compared pairs"
    )
    if endpoint == "health" and not diffs.compared:
        return GateResult(
            name,
            Status.INCONCLUSIVE,
            0,
            {"pairs": pairs, "compared": 0},
            threshold,
            "no health check mirrored (shadow mode mirrors shadow.health_rate % of "
            "GET /health when health is in shadow.endpoints)",
            needs=min_samples,
        )
    noise = NoiseBaseline(evidence.noise.get(endpoint, DiffTally()), overall, min_samples)
    checks = category_checks(diffs, noise, thresholds, min_samples, exact_categories(evidence))
    checks.append(informational_check("error wording", "error_message", diffs, ERROR_WORDING))
    better = evidence.sdk_better.endpoints[endpoint]
    if better:
        checks.append(sdk_better_check(better, evidence.sdk_better.ranked_failures(endpoint)))
    status = combine(checks)
    prefix = ""
    if not diffs.compared:
        if better:
            prefix = f"no compared pairs (legacy failed in all {better} mirrored ones)"
        elif pairs:
            prefix = f"no compared pairs ({pairs} captured, none mirrored)"
        else:
            prefix = "no traffic"
    measured: dict[str, object] = {
        "pairs": pairs,
        "compared": diffs.compared,
        "noise_samples": noise.samples,
        "noise_source": noise.source,
        "sdk_better": better,
        "sdk_worse": evidence.sdk_worse.endpoints[endpoint],
    }
    categories = [c for _, c in (*GATED_CATEGORIES, *STRICT_CATEGORIES)] + ["error_message"]
    measured.update(rates_measured(diffs, noise, categories))
    return GateResult(
        name,
        status,
        diffs.compared,
        measured,
        threshold,
        gate_detail(checks, status, prefix),
        needs=max(0, min_samples - diffs.compared),
        checks=tuple(checks),
    )


def streaming_gate(
    evidence: Evidence, overall: DiffTally, thresholds: Thresholds, min_samples: int
) -> GateResult:
    diffs = evidence.stream_diffs
    noise = NoiseBaseline(evidence.stream_noise, overall, min_samples)
    endings = evidence.stream_endings
    labelled = (
        ("assembled message: content", "content"),
        ("assembled message: finish reason", "finish_reason"),
        ("event sequence", "stream_sequence"),
        ("ending [DONE]/message_stop", "stream_ending"),
        ("usage event", "usage"),
    )
    exact = exact_categories(evidence)
    checks = [
        judged_check(label, category, diffs, noise, thresholds, min_samples, exact)
        for label, category in labelled
    ]
    checks.insert(
        1, strict_check("assembled message: tool calls", "tool_calls", diffs, min_samples)
    )
    unterminated = Status.FAIL if endings.unterminated else Status.PASS
    if endings.streams < min_samples:
        unterminated = Status.INCONCLUSIVE
    checks.append(
        Check(
            "SDK streams end properly",
            unterminated,
            endings.streams,
            f"{endings.unterminated} of {endings.streams} 2xx SDK streams without an ending",
            "every 2xx SDK stream ends with [DONE] / message_stop",
            ", ".join(endings.examples),
        )
    )
    better = evidence.sdk_better
    if better.streams:
        checks.append(sdk_better_check(better.streams, better.ranked_failures(streams=True)))
    status = combine(checks)
    measured: dict[str, object] = {
        "compared": diffs.compared,
        "noise_samples": noise.samples,
        "sdk_streams": endings.streams,
        "sdk_unterminated": endings.unterminated,
        "sdk_better": better.streams,
        "sdk_worse": evidence.sdk_worse.streams,
    }
    measured.update(rates_measured(diffs, noise, [c for _, c in labelled] + ["tool_calls"]))
    return GateResult(
        "streaming parity",
        status,
        diffs.compared,
        measured,
        f"tool calls exact, every SDK stream ended, the rest within the A/A noise; "
        f">= {min_samples} compared streams",
        gate_detail(checks, status, "" if diffs.compared else "no compared streams"),
        needs=max(0, min_samples - diffs.compared),
        checks=tuple(checks),
    )


def error_gate(
    evidence: Evidence, overall: DiffTally, thresholds: Thresholds, min_samples: int
) -> GateResult:
    diffs = evidence.error_diffs
    noise = NoiseBaseline(evidence.error_noise, overall, min_samples)
    checks = [
        diffy_check("status", "status", diffs, noise, thresholds, min_samples),
        diffy_check("error type", "error_type", diffs, noise, thresholds, min_samples),
        informational_check("error wording", "error_message", diffs, ERROR_WORDING),
    ]
    better = evidence.sdk_better
    if better.pairs:
        checks.append(sdk_better_check(better.pairs, better.ranked_failures()))
    status = combine(checks)
    prefix = ""
    if not diffs.compared:
        prefix = "no error exchanges captured (inject upstream faults)"
        if better.pairs:
            prefix = "no compared error exchanges (only legacy failures where the SDK succeeded)"
    measured: dict[str, object] = {
        "compared": diffs.compared,
        "noise_samples": noise.samples,
        "sdk_better": better.pairs,
        "sdk_worse": evidence.sdk_worse.pairs,
    }
    measured.update(rates_measured(diffs, noise, ["status", "error_type", "error_message"]))
    return GateResult(
        "error handling",
        status,
        diffs.compared,
        measured,
        f"same status and error type within the A/A noise; >= {min_samples} error pairs",
        gate_detail(checks, status, prefix),
        needs=max(0, min_samples - diffs.compared),
        checks=tuple(checks),
    )
