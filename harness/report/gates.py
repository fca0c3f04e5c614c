"""The gate function: evidence + thresholds -> one :class:`GateResult` per gate (pure).

Gates, in report order: captures readable (the rows that could not be compared,
:mod:`.capture_gate`), functional parity per endpoint (health included), streaming
parity, memory routing, cookie persistence, provider calls accounted and per request,
upstream request parity (:mod:`.upstream_gates`), error handling (:mod:`.traffic_gates`,
:mod:`.client_gates`), latency per endpoint x stream, load, memory growth
(:mod:`.latency_gates`, :mod:`.resource_gates`), client compatibility, the client
contract (:mod:`.contract_gate`). Each says PASS,
FAIL or INCONCLUSIVE with its sample size; one without enough samples says how many more
it needs (:mod:`.checks` holds the shared rules).
"""

from __future__ import annotations

from harness.report.capture_gate import readable_gate
from harness.report.checks import ENDPOINTS, thresholds_of
from harness.report.client_gates import compatibility_gate, cookie_gate, routing_gate
from harness.report.contract_gate import contract_gate
from harness.report.latency_gates import latency_gates, latency_summaries
from harness.report.model import GateResult, LatencySummary
from harness.report.resource_gates import load_gate, load_summaries, memory_gate, memory_summaries
from harness.report.tally import Evidence
from harness.report.traffic_gates import error_gate, parity_gate, streaming_gate
from harness.report.upstream_gates import (
    accounted_gate,
    calls_per_request_gate,
    request_parity_gate,
)
from harness.settings import HarnessSettings
from harness.stats import BOOTSTRAP_SEED

__all__ = ["evaluate"]


def evaluate(
    evidence: Evidence,
    settings: HarnessSettings,
    *,
    latency: tuple[LatencySummary, ...] | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[GateResult, ...]:
    """Every gate, decided on ``evidence`` with the thresholds in ``settings``."""
    thresholds = thresholds_of(settings)
    min_samples = settings.report.min_samples
    overall = evidence.overall_noise()
    endpoints = [*ENDPOINTS, *sorted(set(evidence.diffs) - set(ENDPOINTS))]
    gates = [readable_gate(evidence)]
    gates.extend(parity_gate(e, evidence, overall, thresholds, min_samples) for e in endpoints)
    gates.append(streaming_gate(evidence, overall, thresholds, min_samples))
    gates.append(routing_gate(evidence, settings))
    gates.append(cookie_gate(evidence, min_samples))
    gates.append(accounted_gate(evidence))
    gates.append(calls_per_request_gate(evidence, min_samples))
    gates.append(request_parity_gate(evidence, min_samples))
    gates.append(error_gate(evidence, overall, thresholds, min_samples))
    summaries = latency if latency is not None else latency_summaries(evidence, seed)
    gates.extend(latency_gates(summaries, settings))
    gates.append(load_gate(load_summaries(evidence.load_runs), settings))
    gates.append(memory_gate(memory_summaries(evidence.rss), settings))
    gates.append(compatibility_gate(evidence, overall, thresholds, settings))
    gates.append(contract_gate(evidence))
    return tuple(gates)
