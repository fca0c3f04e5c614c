"""A canary step's window, decided by the report's own gates (pure).

The window's pairs are folded exactly as the report folds a store
(:class:`~harness.report.collect.EvidenceCollector`) and judged by a small set of its
gates, unchanged:

* **error rate** (5xx, 429/408, no answer, and 2xx streams cut before their ending): the
  SDK's rate on the window's pairs against legacy's on the same pairs, by Diffy's rule
  (:func:`~harness.report.checks.diffy_check`, legacy's rate in the place of the A/A
  noise): a regression only when it beats legacy's by both thresholds;
* **latency** p50 / p95 and a stream's TTFT p50 per endpoint x stream
  (:func:`~harness.report.latency_gates.latency_gates`), both sides timed by the tap
  at the front door as in the report;
* **parity** per endpoint (:func:`~harness.report.traffic_gates.parity_gate`).

Under replay, a legacy-answered pair whose provider calls were not recorded is left out
(:func:`unrecorded_legacy`) and counted: its SDK mirror had nothing to be answered with.

A window passes when nothing fails, the error-rate gate has enough pairs, and at least
one latency and one parity gate pass; a slice with too few samples of its own is shown
but does not hold the step back (a quiet endpoint must not stall the rollout). Any FAIL
is a rollback.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.compare import Comparator
from harness.observation import CapturedPair, Observation
from harness.redaction import Redactor
from harness.report.checks import NoiseBaseline, diffy_check, thresholds_of
from harness.report.collect import EvidenceCollector
from harness.report.latency_gates import latency_gates, latency_summaries
from harness.report.model import GateResult, Status
from harness.report.outcomes import failed_outright, succeeded
from harness.report.tally import DiffTally, Evidence, RunInfo
from harness.report.traffic_gates import parity_gate
from harness.settings import HarnessSettings
from harness.store.capture_store import StoredPair, UnreadableRow

__all__ = [
    "WindowJudgement",
    "error_rate_gate",
    "judge_window",
    "served_error",
    "unrecorded_legacy",
    "unrecorded_note",
]


@dataclass(frozen=True)
class WindowJudgement:
    """A window's decision and the gates it was decided on."""

    status: Status
    pairs: int
    served: dict[str, int]  # who answered the client -> pairs
    gates: tuple[GateResult, ...]
    reason: str
    unrecorded: int = 0  # legacy-answered replay pairs left out (:func:`unrecorded_legacy`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "pairs": self.pairs,
            "served": dict(self.served),
            "reason": self.reason,
            "unrecorded": self.unrecorded,
            "gates": [
                {
                    "name": g.name,
                    "status": str(g.status),
                    "samples": g.samples,
                    "detail": g.summary,
                    "measured": g.measured,
                }
                for g in self.gates
            ],
        }


def served_error(observation: Observation, endpoint: str) -> bool:
    """5xx, 429, 408, no complete answer, or a 2xx stream cut before its ending."""
    if failed_outright(observation):
        return True
    status = observation.status or 0
    # A capture cut at the store's cap cannot be checked: not counted as an error.
    if observation.is_stream and 200 <= status < 300 and not observation.truncated:
        return not succeeded(observation, endpoint)
    return False


def unrecorded_note(count: int) -> str:
    """How a window's reason and the report's canary section name the pairs left out."""
    return f"{count} legacy-answered pairs left out (no provider call recorded)"


def unrecorded_legacy(pair: CapturedPair) -> bool:
    """A replay pair legacy answered with no provider call recorded. The SDK mirror is
    answered by replay with legacy's recorded calls: with none, its answer is the replay
    upstream's miss (a 502), which says nothing of the SDK proxy and must not roll the
    canary back. It happens when the serving legacy stack's LiteLLM server does not run on
    the recording relay's config (and when legacy answered without the provider, which
    the SDK mirror then does too: little is lost by leaving that out)."""
    return (
        pair.upstream_mode == "replay"
        and pair.primary.target == "legacy"
        and not pair.upstream.get("legacy")
    )


def error_rate_gate(pairs: Iterable[CapturedPair], settings: HarnessSettings) -> GateResult:
    """The SDK's error rate against legacy's on the same pairs, by Diffy's rule."""
    min_samples = settings.report.min_samples
    sdk, legacy = DiffTally(), DiffTally()
    for pair in pairs:
        if pair.sdk is None or pair.legacy is None:
            continue
        endpoint = pair.request.endpoint
        for tally, side in ((sdk, pair.sdk), (legacy, pair.legacy)):
            tally.compared += 1
            if served_error(side, endpoint):
                tally.categories["error"] += 1
    baseline = NoiseBaseline(legacy, legacy, min_samples)
    check = diffy_check(
        "SDK error rate", "error", sdk, baseline, thresholds_of(settings), min_samples
    )
    # Diffy's words name the baseline "noise"; here it is legacy's rate on the same pairs.
    check = dataclasses.replace(
        check,
        measured=check.measured.replace(" pairs; noise ", f" of {sdk.compared} pairs; legacy "),
        threshold=check.threshold.replace("noise", "legacy's rate"),
    )
    return GateResult(
        "canary: error rate",
        check.status,
        sdk.compared,
        {
            "pairs": sdk.compared,
            "sdk_errors": sdk.categories["error"],
            "legacy_errors": legacy.categories["error"],
        },
        "SDK's rate of 5xx, 429, 408, no answer and cut streams within legacy's on the same "
        f"pairs ({check.threshold}); >= {min_samples} pairs",
        check.measured if check.status is not Status.PASS else "",
        needs=max(0, min_samples - sdk.compared),
        checks=(check,),
    )


def judge_window(
    rows: Iterable[StoredPair | UnreadableRow],
    settings: HarnessSettings,
    comparator: Comparator,
    run: RunInfo,
    redactor: Redactor | None = None,
) -> WindowJudgement:
    """Fold the window's rows and decide it (``settings.report.min_samples`` per gate)."""
    collector = EvidenceCollector(comparator, run, redactor)
    pairs: list[CapturedPair] = []
    unrecorded = 0
    for row in rows:
        if isinstance(row, StoredPair) and unrecorded_legacy(row.pair):
            unrecorded += 1
            continue
        collector.add_row(row)
        if isinstance(row, StoredPair):
            pairs.append(row.pair)
    evidence = collector.evidence
    served = Counter(p.primary.target for p in pairs)
    errors = error_rate_gate(pairs, settings)
    latency = latency_gates(latency_summaries(evidence), settings)
    parity = _parity_gates(evidence, settings)
    gates = (errors, *latency, *parity)
    status, reason = _decide(errors, latency, parity)
    if unrecorded:
        reason += (
            f"; {unrecorded_note(unrecorded)}: is the legacy LiteLLM server on the recording "
            "relay's config?"
        )
    return WindowJudgement(status, len(pairs), dict(served), gates, reason, unrecorded)


def _parity_gates(evidence: Evidence, settings: HarnessSettings) -> list[GateResult]:
    thresholds = thresholds_of(settings)
    overall = evidence.overall_noise()
    endpoints = sorted(e for e, tally in evidence.diffs.items() if tally.compared)
    return [
        parity_gate(e, evidence, overall, thresholds, settings.report.min_samples)
        for e in endpoints
    ]


def _decide(
    errors: GateResult, latency: list[GateResult], parity: list[GateResult]
) -> tuple[Status, str]:
    failing = [g for g in (errors, *latency, *parity) if g.status is Status.FAIL]
    if failing:
        return Status.FAIL, "; ".join(f"{g.name}: {g.summary}" for g in failing)
    short = [
        name
        for name, gates in (
            ("error rate", [errors]),
            ("latency", latency),
            ("parity", parity),
        )
        if not any(g.status is Status.PASS for g in gates)
    ]
    if short:
        return Status.INCONCLUSIVE, "not enough samples yet: " + ", ".join(short)
    return Status.PASS, "every gate with enough samples passed"
